//! The watcher: every `ALERT_CHECK_SECS` it looks at each pool (one short
//! lock for its status, one for its overload check), finds the conditions
//! that hold, lets `Conditions` decide what to announce, queues those
//! messages and publishes the open conditions for `GET /api/alerts`. The
//! request path is untouched: nothing on it knows alerts exist.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::conditions::{Conditions, OpenCondition};
use super::delivery::AlertQueue;
use super::detect::{ProviderView, Rules, findings};
use super::event::{Alert, AlertKind};
use crate::keypool::{KeyPoolHandle, KeyPools};

/// The open conditions, as last published.
pub type OpenList = Arc<[OpenCondition]>;

/// The background task; `stop` ends it.
pub struct AlertWatcher {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// What the watcher needs besides the pools.
pub struct WatchSettings {
    pub interval: Duration,
    pub dedup_window: Duration,
    pub rules: Rules,
}

impl AlertWatcher {
    pub fn start(
        pools: KeyPools,
        settings: WatchSettings,
        queue: AlertQueue,
        open: watch::Sender<OpenList>,
    ) -> Self {
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut conditions = Conditions::new(settings.dedup_window);
            let mut ticks = tokio::time::interval(settings.interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = &mut stopped => break,
                }
                for pool in pools.iter() {
                    for alert in look(pool, &mut conditions, settings.rules) {
                        log(&alert);
                        queue.push(alert);
                    }
                }
                open.send_replace(conditions.open().into());
            }
        });
        Self { stop, task }
    }

    /// Ends the task and waits for it (it is never busy for long); its
    /// queue handle goes with it, so the delivery tasks drain and end.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// One look at one pool. A pool that cannot be read (poisoned) is skipped:
/// its conditions stay as they were.
fn look(pool: &KeyPoolHandle, conditions: &mut Conditions, rules: Rules) -> Vec<Alert> {
    let Ok(status) = pool.status() else {
        return Vec::new();
    };
    let overloaded = pool.overloaded().ok().flatten();
    let view = ProviderView::from_status(&status, overloaded, pool.scrubber());
    let wall = SystemTime::now();
    conditions.update(
        pool.provider(),
        findings(&view, rules, wall),
        Instant::now(),
        wall,
    )
}

/// Every alert is logged once, here, whether or not a channel is set.
fn log(alert: &Alert) {
    let provider = alert.provider.map(|p| p.as_str()).unwrap_or_default();
    let key = alert
        .key
        .as_ref()
        .map(|k| k.id.as_str())
        .unwrap_or_default();
    match alert.kind {
        AlertKind::Opened(condition) => tracing::warn!(
            provider,
            key,
            condition = condition.as_str(),
            reason = %alert.reason,
            "alert"
        ),
        AlertKind::Recovered(condition) => tracing::info!(
            provider,
            key,
            condition = condition.as_str(),
            "alert recovered"
        ),
        AlertKind::Test => {}
    }
}
