//! `Observer`: the one place a finished request and each upstream attempt
//! are handed to whatever keeps them. Shared by every request; cheap to
//! call, never waits. It also holds the prices the request log prices each
//! row with, and lists the models answered without one.

use std::sync::Arc;

use super::{AttemptOutcome, Metrics};
use crate::domain::{ProviderKind, UsageRow};
use crate::ledger::LedgerSink;
use crate::pricing::Prices;

pub struct Observer {
    ledger: LedgerSink,
    metrics: Arc<Metrics>,
    prices: Prices,
}

impl Observer {
    pub fn new(ledger: LedgerSink, metrics: Arc<Metrics>, prices: Prices) -> Self {
        Self {
            ledger,
            metrics,
            prices,
        }
    }

    /// A request is over: it is counted, and its row goes to the ledger.
    /// An unpriced answer's model is listed (`pricing::UnpricedModels`).
    pub fn request_finished(&self, row: UsageRow) {
        let requested_priced = match (row.provider, row.model_requested.as_deref()) {
            (Some(provider), Some(model)) => self.prices.table().find(provider, model).is_some(),
            _ => false,
        };
        if row.unpriced
            && let (Some(provider), Some(model)) = (row.provider, row.model_answered.as_deref())
        {
            self.prices.unpriced().record(provider, model, row.at_ms);
        }
        self.metrics.request_finished(&row, requested_priced);
        self.ledger.record(row);
    }

    /// An upstream attempt is over.
    pub fn attempt(&self, provider: ProviderKind, key_id: &str, outcome: AttemptOutcome) {
        self.metrics.attempt(provider, key_id, outcome);
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn prices(&self) -> &Prices {
        &self.prices
    }
}
