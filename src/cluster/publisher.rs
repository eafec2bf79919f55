//! Publishes what this replica's pools changed, at once (not on a timer:
//! another replica must stop using a rate-limited key within 100 ms), and
//! keeps each mark in force as a Redis key that expires with it, so a
//! replica that (re)connects can read what it missed. While the link is
//! down, changes wait in `Pending` (bounded) and go out on reconnection.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::MultiplexedConnection;
use tokio::sync::mpsc;

use super::Ctx;
use super::messages::{Body, Envelope};
use crate::domain::ProviderKind;
use crate::keypool::shared::{Mark, SharedChange};

/// Changes kept while Redis is away; past it they are dropped and every
/// mark in force is sent on reconnection instead.
const PENDING_MAX: usize = 10_000;
/// Changes published in one round trip at most.
const BATCH_MAX: usize = 512;
/// Longest a key's new headroom waits before it is published.
const HEADROOM_EVERY: Duration = Duration::from_millis(100);

/// Changes learnt while the link was down.
#[derive(Default)]
pub struct Pending {
    pub changes: Vec<(ProviderKind, SharedChange)>,
    /// Some were dropped: send every mark in force instead.
    pub overflowed: bool,
}

impl Pending {
    /// Puts back changes taken out for a publication that failed, ahead of
    /// any learnt since.
    pub fn restore(&mut self, changes: Vec<(ProviderKind, SharedChange)>, overflowed: bool) {
        self.overflowed |= overflowed;
        let later = std::mem::replace(&mut self.changes, changes);
        for (provider, change) in later {
            self.push(provider, vec![change]);
        }
    }

    fn push(&mut self, provider: ProviderKind, changes: Vec<SharedChange>) {
        if self.changes.len() + changes.len() > PENDING_MAX {
            self.overflowed = true;
            self.changes.clear();
            return;
        }
        self.changes
            .extend(changes.into_iter().map(|change| (provider, change)));
    }
}

pub async fn run(
    ctx: Arc<Ctx>,
    mut changes: mpsc::Receiver<(ProviderKind, Vec<SharedChange>)>,
    mut notices: mpsc::UnboundedReceiver<()>,
) {
    let mut tick = tokio::time::interval(HEADROOM_EVERY);
    // Headroom read from answers' rate-limit headers: it changes with
    // nearly every answer, and only the latest matters, so it waits for
    // the tick (or for a mark that goes out at once) instead of costing a
    // round trip to Redis per answer. Measured with `keygate-bench` and
    // `REDIS_URL` set, publishing it per answer cost keygate about 5 µs of
    // CPU per request.
    let mut held_headroom: Vec<(ProviderKind, SharedChange)> = Vec::new();
    loop {
        let mut batch: Vec<(ProviderKind, SharedChange)> = Vec::new();
        let mut keys_changed = false;
        let mut ticked = false;
        tokio::select! {
            received = changes.recv() => match received {
                Some((provider, list)) => {
                    batch.extend(list.into_iter().map(|c| (provider, c)));
                    while batch.len() < BATCH_MAX {
                        let Ok((provider, list)) = changes.try_recv() else { break };
                        batch.extend(list.into_iter().map(|c| (provider, c)));
                    }
                }
                None => return,
            },
            notice = notices.recv() => match notice {
                Some(()) => keys_changed = true,
                None => return,
            },
            // Flushes the headroom held back and what waited while the
            // link was down.
            _ = tick.tick() => ticked = true,
        }
        if !ticked
            && !keys_changed
            && held_headroom.len() + batch.len() < BATCH_MAX
            && batch.iter().all(|(_, change)| is_headroom(change))
        {
            held_headroom.append(&mut batch);
            continue;
        }
        batch.splice(0..0, held_headroom.drain(..));
        let Some(mut conn) = ctx.link.commands() else {
            if let Ok(mut pending) = ctx.pending.lock() {
                for (provider, change) in batch {
                    pending.push(provider, vec![change]);
                }
            }
            // A key-set notice is not kept: the others' fallback poll of
            // the store picks the change up.
            continue;
        };
        if ctx.overflowed.swap(false, Ordering::Relaxed) {
            batch.extend(super::sync::all_marks(&ctx));
        }
        let waiting = ctx
            .pending
            .lock()
            .map(|mut p| std::mem::take(&mut p.changes))
            .unwrap_or_default();
        if !waiting.is_empty() {
            batch.splice(0..0, waiting);
        }
        if batch.is_empty() && !keys_changed {
            continue;
        }
        if let Err(error) = publish(&ctx, &mut conn, &batch, keys_changed).await {
            tracing::debug!(%error, "publishing to the cluster failed; kept for later");
            if let Ok(mut pending) = ctx.pending.lock() {
                for (provider, change) in batch {
                    pending.push(provider, vec![change]);
                }
            }
            ctx.link.report_trouble();
        }
    }
}

/// Publishes `batch` (grouped by provider, headroom reduced to the latest
/// per key) and writes the marks' keys, in one round trip.
pub async fn publish(
    ctx: &Ctx,
    conn: &mut MultiplexedConnection,
    batch: &[(ProviderKind, SharedChange)],
    keys_changed: bool,
) -> redis::RedisResult<()> {
    let mut pipe = redis::pipe();
    let mut resets = Vec::new();
    for (provider, changes) in group(batch) {
        for change in &changes {
            match change {
                SharedChange::Reset => resets.push(provider),
                SharedChange::Key { key, mark } => {
                    store_mark(ctx, &mut pipe, provider, key, mark, change)
                }
            }
        }
        let envelope = Envelope {
            from: ctx.replica.clone(),
            body: Body::Changes {
                provider: provider.as_str().to_string(),
                changes,
            },
        };
        pipe.cmd("PUBLISH")
            .arg(ctx.names.channel())
            .arg(envelope.encode())
            .ignore();
    }
    if keys_changed {
        let envelope = Envelope {
            from: ctx.replica.clone(),
            body: Body::KeysChanged,
        };
        pipe.cmd("PUBLISH")
            .arg(ctx.names.channel())
            .arg(envelope.encode())
            .ignore();
    }
    for provider in resets {
        // Rare (an admin's reset): the provider's marks are listed first.
        let marks: Vec<String> = super::sync::scan(conn, &ctx.names.marks_of(provider)).await?;
        if !marks.is_empty() {
            redis::cmd("DEL").arg(marks).exec_async(conn).await?;
        }
    }
    pipe.query_async::<()>(conn).await
}

/// Keeps one mark's key in step with the change.
fn store_mark(
    ctx: &Ctx,
    pipe: &mut redis::Pipeline,
    provider: ProviderKind,
    key: &str,
    mark: &Mark,
    change: &SharedChange,
) {
    let names = &ctx.names;
    let json = serde_json::to_string(change).unwrap_or_default();
    let model_slot =
        |kind: &str, model: &Option<String>| format!("{kind}:{}", model.as_deref().unwrap_or("*"));
    let mut set_until = |slot: String, until_ms: u64| {
        let left = until_ms.saturating_sub(now_ms());
        if left > 0 {
            pipe.cmd("SET")
                .arg(names.mark(provider, key, &slot))
                .arg(&json)
                .arg("PX")
                .arg(left)
                .ignore();
        }
    };
    match mark {
        Mark::Cooldown {
            model, until_ms, ..
        } => set_until(model_slot("cooldown", model), *until_ms),
        Mark::Ejected { until_ms, .. } => set_until("ejected".into(), *until_ms),
        Mark::NoAccess {
            model, until_ms, ..
        } => set_until(model_slot("no_access", model), *until_ms),
        Mark::Invalid { .. } => {
            pipe.cmd("SET")
                .arg(names.mark(provider, key, "invalid"))
                .arg(&json)
                .ignore();
        }
        Mark::Valid => {
            pipe.cmd("DEL")
                .arg(names.mark(provider, key, "invalid"))
                .ignore();
        }
        Mark::Recovered { model } => {
            // A success ends the rests that applied to its model; longer
            // ones set meanwhile are republished by whoever set them.
            let mut slots = vec![
                names.mark(provider, key, "cooldown:*"),
                names.mark(provider, key, "ejected"),
            ];
            if model.is_some() {
                slots.push(names.mark(provider, key, &model_slot("cooldown", model)));
            }
            pipe.cmd("DEL").arg(slots).ignore();
        }
        Mark::Limits { .. } => {}
    }
}

/// Whether `change` is only a key's latest rate-limit headroom.
fn is_headroom(change: &SharedChange) -> bool {
    matches!(
        change,
        SharedChange::Key {
            mark: Mark::Limits { .. },
            ..
        }
    )
}

/// `batch` by provider, in order, with only the latest headroom per key.
fn group(batch: &[(ProviderKind, SharedChange)]) -> Vec<(ProviderKind, Vec<SharedChange>)> {
    let mut latest_limits: HashMap<(ProviderKind, &str), usize> = HashMap::new();
    for (index, (provider, change)) in batch.iter().enumerate() {
        if let SharedChange::Key {
            key,
            mark: Mark::Limits { .. },
        } = change
        {
            latest_limits.insert((*provider, key.as_str()), index);
        }
    }
    let mut groups: Vec<(ProviderKind, Vec<SharedChange>)> = Vec::new();
    for (index, (provider, change)) in batch.iter().enumerate() {
        if let SharedChange::Key {
            key,
            mark: Mark::Limits { .. },
        } = change
            && latest_limits.get(&(*provider, key.as_str())) != Some(&index)
        {
            continue;
        }
        match groups.iter_mut().find(|(p, _)| p == provider) {
            Some((_, list)) => list.push(change.clone()),
            None => groups.push((*provider, vec![change.clone()])),
        }
    }
    groups
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(key: &str, remaining: u64) -> SharedChange {
        SharedChange::Key {
            key: key.into(),
            mark: Mark::Limits {
                windows: vec![crate::keypool::shared::SharedWindow {
                    kind: 0,
                    limit: 100,
                    remaining,
                    reset_ms: None,
                }],
            },
        }
    }

    #[test]
    fn a_batch_keeps_only_the_latest_headroom_per_key() {
        let a = ProviderKind::Anthropic;
        let batch = vec![
            (a, limits("k1", 9)),
            (a, SharedChange::Reset),
            (a, limits("k1", 8)),
            (ProviderKind::OpenAI, limits("k1", 7)),
            (a, limits("k2", 5)),
        ];
        let groups = group(&batch);
        assert_eq!(groups.len(), 2);
        assert_eq!(
            groups[0].1,
            vec![SharedChange::Reset, limits("k1", 8), limits("k2", 5)]
        );
        assert_eq!(groups[1].1, vec![limits("k1", 7)]);
    }

    #[test]
    fn pending_changes_are_bounded() {
        let mut pending = Pending::default();
        pending.push(ProviderKind::Anthropic, vec![SharedChange::Reset; 10]);
        assert_eq!(pending.changes.len(), 10);
        pending.push(
            ProviderKind::Anthropic,
            vec![SharedChange::Reset; PENDING_MAX],
        );
        assert!(pending.overflowed);
        assert!(pending.changes.is_empty());
    }
}
