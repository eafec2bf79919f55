//! A channel alerts go out on, and one attempt at sending on it, bounded
//! by the per-attempt timeout whatever the channel does (a webhook that
//! accepts the connection and never answers, an SMTP server that stalls).

use std::time::Duration;

use super::email::EmailChannel;
use super::event::Alert;
use super::webhook::WebhookChannel;

pub enum Channel {
    Webhook(WebhookChannel),
    /// Boxed: the SMTP transport is several times a webhook's size.
    Email(Box<EmailChannel>),
}

/// Why an attempt failed, in words that hold no secret (no webhook path,
/// no SMTP password): safe for logs and for `POST /api/alerts/test`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DeliveryError(pub String);

impl Channel {
    /// How logs and the test route name it, e.g.
    /// `webhook 1 (https://hooks.slack.com:443)`.
    pub fn name(&self) -> &str {
        match self {
            Self::Webhook(webhook) => webhook.name(),
            Self::Email(email) => email.name(),
        }
    }

    /// One attempt, given up after `timeout`.
    pub async fn attempt(&self, alert: &Alert, timeout: Duration) -> Result<(), DeliveryError> {
        let sending = async {
            match self {
                Self::Webhook(webhook) => webhook.send(alert).await,
                Self::Email(email) => email.send(alert).await,
            }
        };
        tokio::time::timeout(timeout, sending)
            .await
            .unwrap_or_else(|_| {
                Err(DeliveryError(format!(
                    "no answer within {} s",
                    timeout.as_secs_f64()
                )))
            })
    }
}
