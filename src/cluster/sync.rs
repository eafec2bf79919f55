//! Catching up after the link (re)opens, before it is declared up:
//!
//! 1. The epoch tells whether Redis kept what it held. The first replica to
//!    reach an empty Redis sets a new one.
//! 2. Same epoch: Redis holds the cluster's marks. This replica publishes
//!    what it learnt while away, then takes Redis's marks as the truth, so
//!    a mark cleared elsewhere meanwhile (a key tested OK, a reset) is
//!    cleared here too, and a cooldown set elsewhere benches the key here.
//! 3. New epoch (Redis restarted empty, or a first start): nobody holds the
//!    marks but the replicas; each publishes every mark in force and merges
//!    what the others hold.

use std::sync::Arc;

use redis::aio::MultiplexedConnection;

use super::Ctx;
use super::publisher::publish;
use crate::domain::ProviderKind;
use crate::keypool::shared::{Mark, SharedChange};

/// The marks every pool holds in force now.
pub fn all_marks(ctx: &Ctx) -> Vec<(ProviderKind, SharedChange)> {
    ctx.pools
        .iter()
        .flat_map(|pool| {
            pool.active_marks()
                .into_iter()
                .map(move |change| (pool.provider(), change))
        })
        .collect()
}

/// Runs the catch-up; `known_epoch` is the epoch seen on the last link
/// (`None` at start). Returns the epoch now in force.
pub async fn catch_up(
    ctx: &Arc<Ctx>,
    conn: &mut MultiplexedConnection,
    known_epoch: Option<&str>,
) -> redis::RedisResult<String> {
    let fresh = uuid::Uuid::new_v4().simple().to_string();
    let created: bool = redis::cmd("SET")
        .arg(ctx.names.epoch())
        .arg(&fresh)
        .arg("NX")
        .query_async::<Option<String>>(conn)
        .await?
        .is_some();
    let epoch = if created {
        fresh
    } else {
        redis::cmd("GET")
            .arg(ctx.names.epoch())
            .query_async::<Option<String>>(conn)
            .await?
            .unwrap_or_default()
    };
    let kept = !created && known_epoch.is_none_or(|known| known == epoch);
    let (waiting, overflowed) = ctx
        .pending
        .lock()
        .map(|mut p| {
            (
                std::mem::take(&mut p.changes),
                std::mem::take(&mut p.overflowed),
            )
        })
        .unwrap_or_default();
    let learnt = if !kept || overflowed {
        all_marks(ctx)
    } else {
        waiting.clone()
    };
    if !learnt.is_empty()
        && let Err(error) = publish(ctx, conn, &learnt, false).await
    {
        // The link failed again: what was learnt waits for the next one.
        if let Ok(mut pending) = ctx.pending.lock() {
            pending.restore(waiting, overflowed);
        }
        return Err(error);
    }
    for pool in ctx.pools.iter() {
        let marks = read_marks(ctx, conn, pool.provider()).await?;
        if kept {
            pool.replace_marks(&marks);
        } else {
            for (key, mark) in marks {
                pool.apply_remote(&SharedChange::Key { key, mark });
            }
        }
    }
    Ok(epoch)
}

/// Every mark of `provider` Redis holds.
async fn read_marks(
    ctx: &Ctx,
    conn: &mut MultiplexedConnection,
    provider: ProviderKind,
) -> redis::RedisResult<Vec<(String, Mark)>> {
    let names = scan(conn, &ctx.names.marks_of(provider)).await?;
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let values: Vec<Option<String>> = redis::cmd("MGET").arg(names).query_async(conn).await?;
    Ok(values
        .into_iter()
        .flatten()
        .filter_map(|json| match serde_json::from_str(&json) {
            Ok(SharedChange::Key { key, mark }) => Some((key, mark)),
            _ => None,
        })
        .collect())
}

/// Every name matching `pattern` (SCAN, never KEYS, which blocks Redis).
pub async fn scan(
    conn: &mut MultiplexedConnection,
    pattern: &str,
) -> redis::RedisResult<Vec<String>> {
    let mut cursor: u64 = 0;
    let mut found = Vec::new();
    loop {
        let (next, names): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(500)
            .query_async(conn)
            .await?;
        found.extend(names);
        if next == 0 {
            return Ok(found);
        }
        cursor = next;
    }
}
