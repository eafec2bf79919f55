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

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

use crate::keypool::KeyPools;
use crate::store::pool_state::{PoolChanges, save_changes};
use crate::store::{Store, StoreError};
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
            let mut polls = tokio::time::interval(watch.poll.min(interval));
            polls.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {
                        if let Err(error) = flush(&pools, vault.store()).await {
                            tracing::error!(%error, "saving key state failed; will retry");
                        }
                    }
                    _ = polls.tick() => {}
                    () = watch.notice.notified() => {}
                    _ = &mut stopped => break,
                }
                key_set = mirror_key_changes(&pools, &vault, key_set).await;
            }
            if let Err(error) = flush(&pools, vault.store()).await {
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
async fn mirror_key_changes(pools: &KeyPools, vault: &Vault, seen: String) -> String {
    let now = match vault.key_set_signature().await {
        Ok(now) => now,
        Err(error) => {
            tracing::error!(%error, "reading the stored key set failed");
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

/// Writes what changed in every pool since the last flush, in one
/// transaction.
async fn flush(pools: &KeyPools, store: &Store) -> Result<(), StoreError> {
    let mut changes = Vec::new();
    for pool in pools.iter() {
        let Ok((provider_stats, keys)) = pool.take_changes() else {
            continue;
        };
        changes.push(PoolChanges {
            provider: pool.provider(),
            provider_stats,
            keys,
        });
    }
    save_changes(store, changes).await
}
