//! Work behind the request path, on one timer (`STATE_FLUSH_SECS`):
//! - saving what changed in the pools, in one transaction, and once more
//!   when told to stop (graceful shutdown); after a kill -9 at most one
//!   interval of counters is lost, and keys themselves are written when
//!   they are added;
//! - noticing key changes made by another process (the `keygate keys` CLI
//!   works on the database directly, another replica's admin routes write
//!   the shared store) and mirroring them into the pools, so keys are
//!   managed without a restart. The stored set's signature is polled every
//!   `KeyWatch::poll`, and a cluster's "keys changed" notice wakes the
//!   reload at once.
//!
//! If the database is unreachable (PostgreSQL restarting, a network cut),
//! requests go on with the pools in memory. The changes a failed flush
//! took from the pools are kept and merged with the next ones (a newer
//! snapshot of a key replaces an older one), so the next flush that gets
//! through writes them all; nothing is lost but what a kill -9 loses
//! anyway. The outage is logged once, and its end.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

use crate::keypool::KeyPools;
use crate::store::StoreError;
use crate::store::pool_state::{PoolChanges, save_changes};
use crate::vault::Vault;

/// How the saver notices key changes made elsewhere.
pub struct KeyWatch {
    /// How often the stored set's signature is compared (in a cluster,
    /// shorter than the flush: a key changed through the CLI must be in
    /// force on every replica within 1 s).
    pub poll: Duration,
    /// Woken by a cluster's "keys changed" notice.
    pub notice: Arc<Notify>,
}

/// The background task; `stop` flushes one last time.
pub struct StateSaver {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl StateSaver {
    pub async fn start(
        pools: KeyPools,
        vault: Arc<Vault>,
        interval: Duration,
        watch: KeyWatch,
    ) -> Self {
        // Taken now, not in the task: a change made before the task first
        // runs must still count as a change.
        let mut key_set = vault.key_set_signature().await.unwrap_or_default();
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut pending = Vec::new();
            let mut outage = Outage::default();
            let mut polls = tokio::time::interval(watch.poll.min(interval));
            polls.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {
                        let saved = flush(&pools, &vault, &mut pending).await;
                        outage.note("saving key state", saved);
                    }
                    _ = polls.tick() => {}
                    () = watch.notice.notified() => {}
                    _ = &mut stopped => break,
                }
                key_set = mirror_key_changes(&pools, &vault, key_set, &mut outage).await;
            }
            if let Err(error) = flush(&pools, &vault, &mut pending).await {
                tracing::error!(%error, "saving key state at shutdown failed");
            }
        });
        Self { stop, task }
    }

    /// Flushes one last time and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Reloads every pool's keys if the stored set changed since `seen`;
/// returns the signature now seen.
async fn mirror_key_changes(
    pools: &KeyPools,
    vault: &Vault,
    seen: String,
    outage: &mut Outage,
) -> String {
    let now = match vault.key_set_signature().await {
        Ok(now) => now,
        Err(error) => {
            outage.note("reading the stored key set", Err(error));
            return seen;
        }
    };
    if now == seen {
        return seen;
    }
    for pool in pools.iter() {
        match vault.load(pool.provider()).await {
            Ok(entries) => pool.sync_keys(entries),
            Err(error) => {
                tracing::error!(%error, provider = %pool.provider(), "reloading keys failed");
                return seen;
            }
        }
    }
    tracing::info!("stored keys changed; pools updated");
    now
}

/// Writes what changed in every pool since the last flush, with what
/// earlier failed flushes kept in `pending`, in one transaction; on
/// failure everything stays in `pending` for the next one.
async fn flush(
    pools: &KeyPools,
    vault: &Vault,
    pending: &mut Vec<PoolChanges>,
) -> Result<(), StoreError> {
    for pool in pools.iter() {
        let Ok((provider_stats, keys)) = pool.take_changes() else {
            continue;
        };
        merge(
            pending,
            PoolChanges {
                provider: pool.provider(),
                provider_stats,
                keys,
            },
        );
    }
    save_changes(vault.store(), pending).await?;
    pending.clear();
    Ok(())
}

/// Adds `newer` to `pending`: its snapshots replace older ones of the same
/// key or provider (each is a pool's whole view of it, not a delta).
fn merge(pending: &mut Vec<PoolChanges>, newer: PoolChanges) {
    let Some(older) = pending.iter_mut().find(|c| c.provider == newer.provider) else {
        pending.push(newer);
        return;
    };
    if newer.provider_stats.is_some() {
        older.provider_stats = newer.provider_stats;
    }
    for (id, key) in newer.keys {
        match older.keys.iter_mut().find(|(old_id, _)| *old_id == id) {
            Some(slot) => slot.1 = key,
            None => older.keys.push((id, key)),
        }
    }
}

/// Whether the database is failing the saver's work, so an outage is
/// logged when it starts and when it ends, not at every tick.
#[derive(Default)]
struct Outage {
    since: Option<tokio::time::Instant>,
}

impl Outage {
    fn note<E: std::fmt::Display>(&mut self, what: &str, result: Result<(), E>) {
        match (result, self.since) {
            (Ok(()), Some(since)) => {
                self.since = None;
                tracing::info!(
                    after_ms = since.elapsed().as_millis() as u64,
                    "the database is reachable again: key state saved"
                );
            }
            (Ok(()), None) => {}
            (Err(error), None) => {
                self.since = Some(tokio::time::Instant::now());
                tracing::error!(
                    %error,
                    "{what} failed; the changes are kept and saved when the database answers \
                     again (requests go on with the keys in memory)"
                );
            }
            (Err(error), Some(_)) => tracing::debug!(%error, "{what} failed again"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{KeyId, ProviderKind};
    use crate::keypool::snapshot::{SavedKey, SavedProvider};

    fn key(requests: u64) -> SavedKey {
        SavedKey {
            requests,
            ..SavedKey::default()
        }
    }

    #[test]
    fn changes_kept_from_a_failed_flush_give_way_to_newer_ones() {
        let a = KeyId::new("key_a");
        let b = KeyId::new("key_b");
        let mut pending = Vec::new();
        merge(
            &mut pending,
            PoolChanges {
                provider: ProviderKind::Anthropic,
                provider_stats: Some(SavedProvider {
                    total_requests: 1,
                    ..SavedProvider::default()
                }),
                keys: vec![(a.clone(), key(1)), (b.clone(), key(1))],
            },
        );
        merge(
            &mut pending,
            PoolChanges {
                provider: ProviderKind::Anthropic,
                provider_stats: None,
                keys: vec![(a.clone(), key(5))],
            },
        );
        assert_eq!(pending.len(), 1);
        let kept = &pending[0];
        assert_eq!(kept.provider_stats.as_ref().unwrap().total_requests, 1);
        assert_eq!(kept.keys, vec![(a, key(5)), (b, key(1))]);
    }
}
