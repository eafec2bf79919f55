//! Deleting ledger data older than a cutoff. The caller (the ledger's
//! pruner) passes the start of a UTC day, so the raw rows and every rollup
//! level lose exactly the same days and never disagree about what is left.

use super::block::Unpacked;
use super::count;
use super::rollup::LEVELS;
use super::write::insert_block;
use crate::store::{Store, StoreError, on_pool, on_tx};

/// One step of pruning the raw rows.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PruneStep {
    /// Rows deleted.
    pub rows: u64,
    /// Whether older rows are left for another step.
    pub more: bool,
}

/// Deletes the raw rows that arrived before `before_ms`, at most `limit`
/// blocks of them, oldest first. A block that also holds newer rows is
/// rewritten without the older ones (they come first in it). Small steps
/// keep each write short, so the ledger writer never waits long behind the
/// pruner.
pub async fn prune_requests(
    store: &Store,
    before_ms: i64,
    limit: u32,
) -> Result<PruneStep, StoreError> {
    const OLDEST: &str = "SELECT id, last_at_ms, row_count FROM usage_blocks \
         WHERE first_at_ms < $1 ORDER BY first_at_ms LIMIT $2";
    const READ: &str = "SELECT format, rows FROM usage_blocks WHERE id = $1";
    const DELETE: &str = "DELETE FROM usage_blocks WHERE id = $1";
    let mut tx = store.begin_write().await?;
    let blocks: Vec<(i64, i64, i64)> = on_tx!(&mut tx, |conn, Db| {
        sqlx::query_as(OLDEST)
            .bind(before_ms)
            .bind(i64::from(limit) + 1)
            .fetch_all(&mut **conn)
            .await
    })?;
    let more = blocks.len() > limit as usize;
    let mut rows = 0;
    for &(block_id, last_at_ms, row_count) in blocks.iter().take(limit as usize) {
        let kept = if last_at_ms < before_ms {
            None
        } else {
            let (format, bytes): (i64, Vec<u8>) = on_tx!(&mut tx, |conn, Db| {
                sqlx::query_as(READ)
                    .bind(block_id)
                    .fetch_one(&mut **conn)
                    .await
            })?;
            match Unpacked::read(format, &bytes) {
                Ok(unpacked) => unpacked.without_before(before_ms),
                // Unreadable anyway: it goes with the other old blocks.
                Err(_) => None,
            }
        };
        rows += count(row_count) - kept.as_ref().map_or(0, |k| count(k.row_count));
        on_tx!(&mut tx, |conn, Db| {
            sqlx::query(DELETE)
                .bind(block_id)
                .execute(&mut **conn)
                .await
                .map(|_| ())
        })?;
        if let Some(kept) = kept {
            insert_block(&mut tx, block_id, &kept).await?;
        }
    }
    tx.commit().await?;
    Ok(PruneStep { rows, more })
}

/// Deletes the rollups (of every level) of periods that start before
/// `before_ms`; returns how many rows went.
pub async fn prune_rollups(store: &Store, before_ms: i64) -> Result<u64, StoreError> {
    let mut deleted = 0;
    for level in LEVELS {
        let delete = format!("DELETE FROM {} WHERE start_ms < $1", level.table);
        deleted += on_pool!(store, |pool, Db| {
            sqlx::query(&delete)
                .bind(before_ms)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
    }
    Ok(deleted)
}
