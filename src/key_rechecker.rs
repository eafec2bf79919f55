//! Invalid keys are not condemned for ever: every `KEY_RECHECK_SECS` each
//! invalid key is checked again with the same cheap call as `POST …/test`
//! (`GET /v1/models`), and revived when it passes. A key an upstream
//! rejected by mistake, or one whose account was topped up, comes back by
//! itself; a key that still fails stays invalid, with its reason.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::key_check::{KeyCheck, check_key};
use crate::keypool::{KeyPoolHandle, KeyPools};
use crate::providers::Upstreams;
use crate::vault::Vault;

/// The background task; dropped or stopped, it ends.
pub struct KeyRechecker {
    task: JoinHandle<()>,
}

impl KeyRechecker {
    pub fn start(
        pools: KeyPools,
        vault: Arc<Vault>,
        upstreams: Arc<Upstreams>,
        interval: Duration,
        timeout: Duration,
    ) -> Self {
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick is immediate; the keys were just loaded.
            ticks.tick().await;
            loop {
                ticks.tick().await;
                for pool in pools.iter() {
                    recheck(pool, &vault, &upstreams, timeout).await;
                }
            }
        });
        Self { task }
    }

    /// Stops the checks (a check under way is abandoned; it changes
    /// nothing until it has a verdict).
    pub fn stop(self) {
        self.task.abort();
    }
}

async fn recheck(pool: &KeyPoolHandle, vault: &Vault, upstreams: &Upstreams, timeout: Duration) {
    let Ok(status) = pool.status() else {
        return;
    };
    let provider = pool.provider();
    for key in status.keys.iter().filter(|k| k.state == "invalid") {
        let entry = match vault.open_one(provider, key.id.as_str()).await {
            Ok(Some(entry)) => entry,
            Ok(None) => continue,
            Err(error) => {
                tracing::error!(%error, %provider, "re-checking invalid keys: the key store failed");
                return;
            }
        };
        if check_key(upstreams, provider, &entry, timeout).await == KeyCheck::Ok {
            pool.set_invalid(&entry.id, None);
            tracing::info!(%provider, key = %entry.id, "an invalid key passed its check again and is back in rotation");
        }
    }
}
