//! `LedgerSink`: where the request path drops its finished rows. Recording
//! never waits: the writer drains a bounded queue (`RowQueue`) in batches,
//! and a row that finds the queue full is counted as dropped instead of
//! slowing a request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::queue::RowQueue;
use crate::domain::UsageRow;

/// Rows written and dropped since start, for `/metrics` and the warning.
#[derive(Debug, Default)]
pub struct LedgerCounters {
    pub written: AtomicU64,
    pub dropped: AtomicU64,
}

impl LedgerCounters {
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[derive(Clone)]
pub struct LedgerSink {
    /// `None`: the ledger is off; rows are counted as neither.
    queue: Option<Arc<RowQueue>>,
    counters: Arc<LedgerCounters>,
}

impl LedgerSink {
    pub fn new(queue: Arc<RowQueue>, counters: Arc<LedgerCounters>) -> Self {
        Self {
            queue: Some(queue),
            counters,
        }
    }

    /// A sink that keeps nothing (the ledger is turned off).
    pub fn off() -> Self {
        Self {
            queue: None,
            counters: Arc::default(),
        }
    }

    /// Queues `row` for the writer, or counts it dropped if the queue is
    /// full or the writer has stopped.
    pub fn record(&self, row: UsageRow) {
        if let Some(queue) = &self.queue
            && queue.push(row).is_err()
        {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn counters(&self) -> &Arc<LedgerCounters> {
        &self.counters
    }
}
