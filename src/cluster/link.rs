//! The replica's link to Redis: connecting (bounded by a timeout), the
//! shared command connection the other cluster tasks borrow, whether the
//! link is up (for `/health` and the `keygate_redis_connected` gauge), and
//! the backoff between attempts. Losing the link is logged once, and so is
//! getting it back; meanwhile the replica serves on its own view.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::{MultiplexedConnection, PubSub};
use redis::{AsyncConnectionConfig, Client};
use tokio::sync::{Notify, watch};

/// Longest wait for Redis to accept a connection or answer a command: a
/// replica that cannot reach Redis must notice soon and serve alone.
const TIMEOUT: Duration = Duration::from_secs(2);
/// Backoff between connection attempts: doubles from the first to the last.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The URL does not parse; said without the URL (it may hold a password).
    #[error("REDIS_URL is not a usable Redis URL: {0}")]
    Url(String),
}

/// Shared between the cluster's tasks.
pub struct Link {
    client: Client,
    connected: Arc<AtomicBool>,
    /// The command connection while the link is up.
    commands: watch::Sender<Option<MultiplexedConnection>>,
    /// A task whose command failed asks the supervisor to reconnect.
    trouble: Notify,
}

impl Link {
    pub fn new(url: &str) -> Result<Self, LinkError> {
        let client = Client::open(url).map_err(|e| LinkError::Url(format!("{:?}", e.kind())))?;
        Ok(Self {
            client,
            connected: Arc::new(AtomicBool::new(false)),
            commands: watch::channel(None).0,
            trouble: Notify::new(),
        })
    }

    pub fn connected(&self) -> &Arc<AtomicBool> {
        &self.connected
    }

    pub fn is_up(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// The command connection, if the link is up. Cloning it is cheap: all
    /// clones share one socket.
    pub fn commands(&self) -> Option<MultiplexedConnection> {
        self.commands.borrow().clone()
    }

    /// Opens both connections: commands and pub/sub.
    pub async fn connect(&self) -> redis::RedisResult<(MultiplexedConnection, PubSub)> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT));
        let commands = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let pubsub = tokio::time::timeout(TIMEOUT, self.client.get_async_pubsub())
            .await
            .map_err(|_| {
                redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut))
            })??;
        Ok((commands, pubsub))
    }

    pub fn set_up(&self, commands: MultiplexedConnection) {
        self.commands.send_replace(Some(commands));
        self.connected.store(true, Ordering::Relaxed);
    }

    pub fn set_down(&self) {
        self.connected.store(false, Ordering::Relaxed);
        self.commands.send_replace(None);
    }

    /// Tells the supervisor a command failed: the link may be gone.
    pub fn report_trouble(&self) {
        self.trouble.notify_one();
    }

    pub async fn trouble(&self) {
        self.trouble.notified().await;
    }
}

/// Delays between connection attempts.
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    pub fn new() -> Self {
        Self {
            next: BACKOFF_FIRST,
        }
    }

    pub fn reset(&mut self) {
        self.next = BACKOFF_FIRST;
    }

    /// The next delay: doubling, capped.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        delay
    }
}

/// `url` with any password replaced, for logs.
pub fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(unparsable URL)".into();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_the_log() {
        assert_eq!(
            redacted_url("redis://:hunter2@10.0.0.5:6379/0"),
            "redis://:***@10.0.0.5:6379/0"
        );
        assert_eq!(
            redacted_url("rediss://app:s3cr:et@redis.internal:6380"),
            "rediss://app:***@redis.internal:6380"
        );
        assert_eq!(
            redacted_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_and_resets() {
        let mut backoff = Backoff::new();
        let delays: Vec<u64> = (0..8)
            .map(|_| backoff.next_delay().as_millis() as u64)
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_millis(100));
    }
}
