//! Alerts: telling people when a provider's keys are in trouble, by webhook
//! and by e-mail, without touching the request path.
//!
//! - `watcher`: the task that looks at every pool each `ALERT_CHECK_SECS`
//!   and turns what it finds into messages.
//! - `detect`: which conditions hold on one look at a pool (pure).
//! - `conditions`: which of them are open, and which to announce: one
//!   alert per condition and subject per `ALERT_DEDUP_SECS`, a recovery
//!   message closing each one announced (pure, with a fake clock).
//! - `event`: the vocabulary (condition, subject, finding, alert).
//! - `message`: how an alert reads (text, JSON body, e-mail).
//! - `delivery`: a bounded queue and a task per channel, retries with
//!   backoff; `channel`, `webhook`, `email`: the channels themselves.
//! - `counters`: deliveries sent, failed and dropped, for metrics.
//! - `settings`: the checked settings `config` reads from the environment.
//!
//! `Alerts::start` assembles it all; `AlertsHandle` (in `AppState`) is what
//! the routes and a metrics endpoint read.

mod channel;
mod conditions;
mod counters;
mod delivery;
mod detect;
mod email;
mod event;
mod message;
pub mod settings;
mod watcher;
mod webhook;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use self::channel::Channel;
use self::detect::Rules;
use self::email::{EmailChannel, EmailSetupError};
use self::watcher::{AlertWatcher, OpenList, WatchSettings};
use self::webhook::WebhookChannel;
use crate::keypool::KeyPools;

pub use conditions::OpenCondition;
pub use counters::{AlertCounters, AlertCounts};
pub use event::Condition;
pub use settings::AlertSettings;

/// A channel could not be set up at start.
#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    #[error("cannot build the webhook HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error(transparent)]
    Email(#[from] EmailSetupError),
}

/// The running alert tasks: the watcher and one delivery task per channel.
pub struct Alerts {
    watcher: AlertWatcher,
    deliveries: Vec<JoinHandle<()>>,
    handle: AlertsHandle,
}

impl Alerts {
    /// Builds the channels and starts watching `pools`.
    pub fn start(settings: AlertSettings, pools: KeyPools) -> Result<Self, AlertsError> {
        let channels = channels(&settings)?;
        describe(&channels);
        let counters = Arc::new(AlertCounters::default());
        let (queue, deliveries) = delivery::start(&channels, settings.delivery, counters.clone());
        let (publish, open) = watch::channel(OpenList::from(Vec::new()));
        let watcher = AlertWatcher::start(
            pools,
            WatchSettings {
                interval: settings.check_interval,
                dedup_window: settings.dedup_window,
                rules: Rules {
                    ejections: settings.ejections,
                },
            },
            queue,
            publish,
        );
        Ok(Self {
            watcher,
            deliveries,
            handle: AlertsHandle {
                counters,
                channels: channels.into(),
                open,
                timeout: settings.delivery.timeout,
            },
        })
    }

    pub fn handle(&self) -> AlertsHandle {
        self.handle.clone()
    }

    /// Stops watching, then gives alerts already queued one attempt's time
    /// (`ALERT_TIMEOUT_SECS`) to go out before their tasks are ended.
    pub async fn stop(self) {
        self.watcher.stop().await;
        let deadline = tokio::time::Instant::now() + self.handle.timeout;
        for mut task in self.deliveries {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}

fn channels(settings: &AlertSettings) -> Result<Vec<Arc<Channel>>, AlertsError> {
    let mut channels = Vec::new();
    if !settings.webhooks.is_empty() {
        let http = webhook::http_client(settings.delivery.timeout)?;
        for (index, url) in settings.webhooks.iter().enumerate() {
            channels.push(Arc::new(Channel::Webhook(WebhookChannel::new(
                http.clone(),
                url.clone(),
                settings.webhook_format,
                index + 1,
            ))));
        }
    }
    if let Some(email) = &settings.email {
        let channel = EmailChannel::new(email, settings.delivery.timeout)?;
        channels.push(Arc::new(Channel::Email(Box::new(channel))));
    }
    Ok(channels)
}

fn describe(channels: &[Arc<Channel>]) {
    if channels.is_empty() {
        tracing::info!(
            "alerts: no channel configured (ALERT_WEBHOOK_URLS, SMTP_URL); \
             alerts are logged and listed at GET /api/alerts"
        );
    } else {
        let names: Vec<&str> = channels.iter().map(|c| c.name()).collect();
        tracing::info!("alerts go to: {}", names.join(", "));
    }
}

/// What the routes (and a metrics endpoint) reach: counters, the open
/// conditions and the channels. Cheap to clone.
#[derive(Clone)]
pub struct AlertsHandle {
    counters: Arc<AlertCounters>,
    channels: Arc<[Arc<Channel>]>,
    open: watch::Receiver<OpenList>,
    timeout: Duration,
}

/// One channel's answer to a test message.
#[derive(Debug, Clone, Serialize)]
pub struct TestResult {
    pub channel: String,
    pub ok: bool,
    /// Why it failed (no secret in it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl AlertsHandle {
    /// Deliveries sent, failed and dropped since start.
    pub fn counters(&self) -> &Arc<AlertCounters> {
        &self.counters
    }

    /// The conditions open now, oldest first, as of the watcher's last look.
    pub fn open(&self) -> OpenList {
        self.open.borrow().clone()
    }

    /// Each channel's name, e.g. `webhook 1 (https://hooks.slack.com:443)`.
    pub fn channel_names(&self) -> Vec<String> {
        self.channels.iter().map(|c| c.name().to_string()).collect()
    }

    /// Sends a test message on every channel at once, one attempt each
    /// (bounded by `ALERT_TIMEOUT_SECS`), and reports each result.
    pub async fn send_test(&self) -> Vec<TestResult> {
        let alert = event::Alert::test(SystemTime::now());
        let attempts = self.channels.iter().map(|channel| {
            let alert = &alert;
            async move {
                let result = channel.attempt(alert, self.timeout).await;
                if let Err(error) = &result {
                    tracing::warn!(channel = channel.name(), %error, "test alert not delivered");
                }
                TestResult {
                    channel: channel.name().to_string(),
                    ok: result.is_ok(),
                    error: result.err().map(|e| e.0),
                }
            }
        });
        futures::future::join_all(attempts).await
    }
}
