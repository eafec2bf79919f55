//! `ConversionGate`: a semaphore that lets only a few large bodies be
//! converted at once. Converting a body holds it and its rebuilt copy in
//! memory; four at once used to take gigabytes, and freed memory is not
//! always given back to the system. Small bodies pass without waiting; a
//! large one waits for a turn, at most `max_wait`, then gets a 503 with
//! `Retry-After`. A turn covers the conversion only, not the upstream call,
//! so a slow upstream never holds one.

use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::error::ApiError;

/// From `Config`: what counts as large, how many at once, how long to wait.
#[derive(Debug, Clone, Copy)]
pub struct GateSettings {
    /// Bodies larger than this many bytes wait for a turn.
    pub large_body: usize,
    /// Large bodies converted at once (at least 1).
    pub concurrency: usize,
    /// Longest wait for a turn before a 503.
    pub max_wait: Duration,
}

pub struct ConversionGate {
    turns: Semaphore,
    settings: GateSettings,
}

/// A large body's turn to be converted; dropping it lets the next one in.
#[must_use = "the turn ends when this is dropped"]
pub struct Turn<'a> {
    _permit: Option<SemaphorePermit<'a>>,
}

impl ConversionGate {
    pub fn new(settings: GateSettings) -> Self {
        Self {
            turns: Semaphore::new(settings.concurrency.max(1)),
            settings,
        }
    }

    /// Waits for a turn to convert a body of `body_len` bytes; a small body
    /// has one at once.
    pub async fn admit(&self, body_len: usize) -> Result<Turn<'_>, ApiError> {
        if body_len <= self.settings.large_body {
            return Ok(Turn { _permit: None });
        }
        match tokio::time::timeout(self.settings.max_wait, self.turns.acquire()).await {
            Ok(Ok(permit)) => Ok(Turn {
                _permit: Some(permit),
            }),
            // The semaphore is never closed; say "busy" all the same.
            Ok(Err(_)) | Err(_) => Err(ApiError::unavailable(format!(
                "too many large requests (over {} bytes) are being converted at once; retry shortly",
                self.settings.large_body
            ))
            .with_retry_after(Duration::from_secs(1))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_millis(200);

    fn gate() -> ConversionGate {
        ConversionGate::new(GateSettings {
            large_body: 1_000,
            concurrency: 1,
            max_wait: WAIT,
        })
    }

    #[tokio::test]
    async fn a_large_body_waits_for_a_turn_and_small_ones_do_not() {
        let gate = gate();
        let first = gate.admit(5_000).await.unwrap();
        assert!(gate.admit(1_000).await.is_ok(), "small bodies never wait");
        let waiting = gate.admit(5_000);
        tokio::pin!(waiting);
        assert!(
            tokio::time::timeout(WAIT / 4, &mut waiting).await.is_err(),
            "the second large body waits"
        );
        drop(first);
        assert!(waiting.await.is_ok(), "and gets the turn once it is free");
    }

    #[tokio::test]
    async fn a_wait_past_the_bound_is_503_with_retry_after() {
        let gate = gate();
        let _first = gate.admit(5_000).await.unwrap();
        let started = std::time::Instant::now();
        let error = gate.admit(5_000).await.err().unwrap();
        assert!(started.elapsed() >= WAIT);
        assert_eq!(error.status, 503);
        assert_eq!(error.retry_after, Some(1));
        assert!(
            error.message.contains("over 1000 bytes"),
            "{}",
            error.message
        );
    }
}
