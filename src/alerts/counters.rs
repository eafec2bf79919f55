//! Counts of alert deliveries, for `GET /api/alerts` and a metrics endpoint.
//! One delivery is one alert to one channel: an alert sent to a webhook and
//! by e-mail counts twice. Test messages (`POST /api/alerts/test`) are not
//! counted; their results are in that route's answer.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Monotonic counters, shared by the delivery tasks (which add) and
/// readers (which load). Relaxed ordering: each counter is read on its own.
#[derive(Debug, Default)]
pub struct AlertCounters {
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AlertCounts {
    /// Deliveries a channel accepted (a 2xx from a webhook, the SMTP
    /// server's 250 for the message).
    pub sent: u64,
    /// Deliveries given up on after every retry.
    pub failed: u64,
    /// Alerts not queued because the channel's queue was full.
    pub dropped: u64,
}

impl AlertCounters {
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> AlertCounts {
        AlertCounts {
            sent: self.sent(),
            failed: self.failed(),
            dropped: self.dropped(),
        }
    }

    pub(super) fn count_sent(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn count_failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn count_dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }
}
