//! `Observer`: the one place a finished request and each upstream attempt
//! are handed to whatever keeps them. Shared by every request; cheap to
//! call, never waits.

use std::sync::Arc;

use super::{AttemptOutcome, Metrics};
use crate::domain::{ProviderKind, UsageRow};
use crate::ledger::LedgerSink;

pub struct Observer {
    ledger: LedgerSink,
    metrics: Arc<Metrics>,
}

impl Observer {
    pub fn new(ledger: LedgerSink, metrics: Arc<Metrics>) -> Self {
        Self { ledger, metrics }
    }

    /// A request is over: it is counted, and its row goes to the ledger.
    pub fn request_finished(&self, row: UsageRow) {
        self.metrics.request_finished(&row);
        self.ledger.record(row);
    }

    /// An upstream attempt is over.
    pub fn attempt(&self, provider: ProviderKind, key_id: &str, outcome: AttemptOutcome) {
        self.metrics.attempt(provider, key_id, outcome);
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }
}
