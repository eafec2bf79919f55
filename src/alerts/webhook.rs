//! Alerts by webhook: one JSON POST per alert, `{"text": …}` or the
//! structured body. The URL is a secret (a Slack webhook URL is its own
//! credential), so errors are built without it; redirects are not followed
//! (a redirect could carry the alert somewhere else), and the answer's body
//! is never read: its status is all that counts.

use std::time::Duration;

use super::channel::DeliveryError;
use super::event::Alert;
use super::message::{json_body, slack_body};
use super::settings::{WebhookFormat, WebhookUrl};

pub struct WebhookChannel {
    http: reqwest::Client,
    url: WebhookUrl,
    format: WebhookFormat,
    name: String,
}

/// The client every webhook shares. `timeout` bounds connecting too, so a
/// black-holed address fails within one attempt's time.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(timeout)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("keygate/", env!("CARGO_PKG_VERSION")))
        .build()
}

impl WebhookChannel {
    /// The webhook at `url`, numbered `number` (from 1) in logs and results.
    pub fn new(
        http: reqwest::Client,
        url: WebhookUrl,
        format: WebhookFormat,
        number: usize,
    ) -> Self {
        let name = format!("webhook {number} ({})", url.shown());
        Self {
            http,
            url,
            format,
            name,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub async fn send(&self, alert: &Alert) -> Result<(), DeliveryError> {
        let body = match self.format {
            WebhookFormat::Slack => slack_body(alert),
            WebhookFormat::Json => json_body(alert),
        };
        let response = self
            .http
            .post(self.url.url().clone())
            .json(&body)
            .send()
            .await
            .map_err(describe)?;
        let status = response.status();
        // Dropped unread: the connection is closed rather than drained.
        drop(response);
        if status.is_success() {
            Ok(())
        } else {
            Err(DeliveryError(format!("the webhook answered HTTP {status}")))
        }
    }
}

/// A transport error in words, without the URL reqwest would print.
fn describe(error: reqwest::Error) -> DeliveryError {
    let error = error.without_url();
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "the request failed"
    };
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    match causes.last() {
        Some(root) => DeliveryError(format!("{what}: {root}")),
        None => DeliveryError(what.to_string()),
    }
}
