//! Writing pool state behind the request path: a task that flushes what
//! changed every `STATE_FLUSH_SECS` in one transaction, and once more when
//! told to stop (graceful shutdown). After a kill -9 at most one interval of
//! counters is lost; keys themselves are written when they are added.

use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::KeyPools;
use super::persist::flush;
use crate::store::Store;

pub struct Persister {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Persister {
    pub fn spawn(pools: KeyPools, store: Store, interval: Duration) -> Self {
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = &mut stopped => break,
                }
                if let Err(error) = flush(&pools, &store).await {
                    tracing::error!(%error, "saving key state failed; will retry");
                }
            }
            if let Err(error) = flush(&pools, &store).await {
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
