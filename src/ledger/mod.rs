//! The usage ledger: one row per client request (`domain::UsageRow`),
//! queued by the request path without waiting (`sink`) and written to the
//! database in batches behind it.

pub mod sink;

pub use sink::{LedgerCounters, LedgerSink};
