//! Retention: ledger rows and rollups older than `USAGE_RETENTION_DAYS`
//! are deleted by a background task, at start and then every `every`.
//!
//! The cutoff is rounded down to the start of its UTC day, so raw rows and
//! every rollup level (the coarsest is a day) lose the same days. Raw rows go in small steps with a pause between them: each
//! step is a short write, and the ledger writer (the database's other
//! writer) gets its turn in between instead of waiting behind a delete of a
//! whole day of rows.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::now_ms;
use crate::store::usage::{day_floor, prune_requests, prune_rollups};
use crate::store::{Store, StoreError};

/// Blocks of raw rows deleted per step (a block holds one write's rows,
/// at most `block::MAX_ROWS`).
const STEP_BLOCKS: u32 = 8;
/// Pause between steps, for the writer's turn.
const STEP_PAUSE: Duration = Duration::from_millis(20);

/// What one pruning deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub requests: u64,
    pub rollups: u64,
}

/// The start of the oldest day kept at `now_ms`.
pub fn cutoff(retention: Duration, now_ms: i64) -> i64 {
    let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    day_floor(now_ms.saturating_sub(retention_ms))
}

/// Deletes what is older than `retention` at `now_ms`, all at once.
pub async fn prune(store: &Store, retention: Duration, now_ms: i64) -> Result<Pruned, StoreError> {
    prune_before(store, cutoff(retention, now_ms), || true).await
}

/// Deletes rows and rollups before `cutoff_ms`, while `go_on()` says so
/// (checked between steps; the rollups go only once every row has).
async fn prune_before(
    store: &Store,
    cutoff_ms: i64,
    go_on: impl Fn() -> bool,
) -> Result<Pruned, StoreError> {
    let mut pruned = Pruned::default();
    loop {
        let step = prune_requests(store, cutoff_ms, STEP_BLOCKS).await?;
        pruned.requests += step.rows;
        if !step.more {
            break;
        }
        if !go_on() {
            return Ok(pruned);
        }
        tokio::time::sleep(STEP_PAUSE).await;
    }
    pruned.rollups = prune_rollups(store, cutoff_ms).await?;
    Ok(pruned)
}

/// The background pruner.
pub struct Pruner {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Pruner {
    pub fn start(store: Store, retention: Duration, every: Duration) -> Self {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut signal = stopped.clone();
            loop {
                // The first tick is immediate: a keygate that was down for
                // a while prunes as it starts.
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = signal.changed() => break,
                }
                let go_on = || !*stopped.borrow();
                match prune_before(&store, cutoff(retention, now_ms()), go_on).await {
                    Ok(pruned) if pruned != Pruned::default() => tracing::info!(
                        requests = pruned.requests,
                        rollups = pruned.rollups,
                        "usage ledger: pruned data older than the retention"
                    ),
                    Ok(_) => {}
                    Err(error) => {
                        tracing::error!(%error, "usage ledger: pruning failed; will retry")
                    }
                }
                if !go_on() {
                    break;
                }
            }
        });
        Self { stop, task }
    }

    /// Ends the pruner after its current step (a step is one short delete).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::usage::{DAY_MS, HOUR_MS};

    #[test]
    fn the_cutoff_keeps_the_whole_day_the_retention_ends_in() {
        let now = 1_000 * DAY_MS + 5 * HOUR_MS + 1_234;
        let thirty_days = Duration::from_secs(30 * 86_400);
        assert_eq!(cutoff(thirty_days, now), 970 * DAY_MS);
        assert!(
            cutoff(Duration::from_secs(u64::MAX), now) < 0,
            "keeps everything"
        );
    }
}
