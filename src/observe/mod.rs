//! What keygate observes about each client request, and where it goes.
//!
//! - `request_log`: `RequestLog`, filled in by the layers, the gateway and
//!   the stream relay as a request runs, and turned into exactly one
//!   `domain::UsageRow` when the last of them lets go of it.
//! - `observer`: where finished rows and attempt outcomes go (the usage
//!   ledger, the Prometheus metrics).
//! - `metrics`: the Prometheus series counted as requests finish
//!   (`cache_metrics`: the prompt cache's, per key and scope);
//!   `scrape`: those read from the pools when Prometheus asks.
//!
//! The layer that starts a log for each proxied request is
//! `routes::request_log`, since it reads the client's credential.

mod cache_metrics;
pub mod metrics;
pub mod observer;
pub mod request_log;
pub mod scrape;

pub use metrics::{AttemptOutcome, Metrics};
pub use observer::Observer;
pub use request_log::RequestLog;
