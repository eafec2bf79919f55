//! Getting alerts out without ever holding anything up: each channel has
//! its own bounded queue and its own task, so a dead webhook delays
//! neither the watcher (it only `try_send`s) nor the other channels. A full
//! queue drops the new alert and counts it; a failed attempt is retried
//! after a doubling delay, a bounded number of times, then the alert is
//! logged and counted as failed.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::task::JoinHandle;

use super::channel::Channel;
use super::counters::AlertCounters;
use super::event::Alert;
use super::settings::DeliveryBounds;

/// The sending side of every channel's queue; cheap to clone. When the
/// last one is dropped, the delivery tasks finish what is queued and end.
#[derive(Clone)]
pub struct AlertQueue {
    queues: Arc<[ChannelQueue]>,
    counters: Arc<AlertCounters>,
}

/// One channel and the way into its queue.
struct ChannelQueue {
    channel: Arc<Channel>,
    sender: mpsc::Sender<Arc<Alert>>,
}

impl AlertQueue {
    /// Queues `alert` on every channel; never waits.
    pub fn push(&self, alert: Alert) {
        let alert = Arc::new(alert);
        for ChannelQueue { channel, sender } in self.queues.iter() {
            match sender.try_send(alert.clone()) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    self.counters.count_dropped();
                    tracing::warn!(
                        channel = channel.name(),
                        event = alert.kind.event(),
                        "alert dropped: the channel's queue is full (ALERT_QUEUE_SIZE)"
                    );
                }
                // Only at shutdown, when the task has ended.
                Err(TrySendError::Closed(_)) => {}
            }
        }
    }
}

/// Starts one delivery task per channel.
pub fn start(
    channels: &[Arc<Channel>],
    bounds: DeliveryBounds,
    counters: Arc<AlertCounters>,
) -> (AlertQueue, Vec<JoinHandle<()>>) {
    let mut queues = Vec::with_capacity(channels.len());
    let mut tasks = Vec::with_capacity(channels.len());
    for channel in channels {
        let (sender, receiver) = mpsc::channel(bounds.queue.max(1));
        queues.push(ChannelQueue {
            channel: channel.clone(),
            sender,
        });
        tasks.push(tokio::spawn(run(
            channel.clone(),
            receiver,
            bounds,
            counters.clone(),
        )));
    }
    let queue = AlertQueue {
        queues: queues.into(),
        counters,
    };
    (queue, tasks)
}

async fn run(
    channel: Arc<Channel>,
    mut queue: mpsc::Receiver<Arc<Alert>>,
    bounds: DeliveryBounds,
    counters: Arc<AlertCounters>,
) {
    while let Some(alert) = queue.recv().await {
        if deliver(&channel, &alert, bounds).await {
            counters.count_sent();
        } else {
            counters.count_failed();
        }
    }
}

/// Sends `alert`, retrying; whether it got through.
async fn deliver(channel: &Channel, alert: &Alert, bounds: DeliveryBounds) -> bool {
    let mut retry = 0;
    loop {
        let error = match channel.attempt(alert, bounds.timeout).await {
            Ok(()) => {
                tracing::debug!(
                    channel = channel.name(),
                    event = alert.kind.event(),
                    "alert sent"
                );
                return true;
            }
            Err(error) => error,
        };
        if retry >= bounds.retries {
            tracing::warn!(
                channel = channel.name(),
                event = alert.kind.event(),
                attempts = retry + 1,
                %error,
                "alert not delivered; giving up on it"
            );
            return false;
        }
        let delay = bounds.delay_before(retry);
        tracing::debug!(
            channel = channel.name(),
            %error,
            retry_in_ms = delay.as_millis() as u64,
            "alert delivery failed; will retry"
        );
        tokio::time::sleep(delay).await;
        retry += 1;
    }
}
