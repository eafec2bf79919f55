//! One row of the usage ledger: everything keygate knows about one client
//! request once it is over, whether it succeeded, was refused, failed
//! mid-stream or was abandoned by its client. Rows carry key ids and client
//! key fingerprints only, never key material.

use serde::Serialize;

use super::{ProviderKind, Usage};

/// What the client saw when it hung up before its answer was complete.
/// nginx's "client closed request": no answer status was ever sent.
pub const CLIENT_CLOSED_STATUS: u16 = 499;

/// The error class of a request whose client hung up first.
pub const CLIENT_CLOSED: &str = "client_closed";

/// `Default` is an empty row (no route, status 0): a start for tests and
/// tools that fill in what they need.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UsageRow {
    /// When the request arrived, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The `x-request-id` the client was answered with.
    pub request_id: String,
    /// The route's path, e.g. `/v1/messages`.
    pub route: &'static str,
    /// `None` for a request refused before its provider was known.
    pub provider: Option<ProviderKind>,
    pub model_requested: Option<String>,
    /// The model the upstream says answered.
    pub model_answered: Option<String>,
    /// The key of the last attempt (the answering one, on success).
    pub key_id: Option<String>,
    pub attempts: u32,
    /// Every key tried, in order (a key may appear once only).
    pub keys_tried: Vec<String>,
    /// The status the client was answered with (`CLIENT_CLOSED_STATUS` if
    /// it hung up before any answer). A stream that failed after it began
    /// keeps its 200 and has an `error_class`.
    pub status: u16,
    /// `None` for a success; else the error type the client saw
    /// (`rate_limit_error`, `client_closed`, ...).
    pub error_class: Option<String>,
    pub usage: Usage,
    /// Cost in nano-dollars (USD × 10⁻⁹), exact; 0 for an unpriced model.
    pub cost_nanos: u64,
    /// From the request's arrival to the last byte of its answer.
    pub latency_us: u64,
    /// From arrival to the first content of a stream.
    pub ttft_us: Option<u64>,
    /// The fingerprint of the client's gateway key, when keys are required.
    pub client_key: Option<String>,
    /// Tokens were used, but keygate had no price for the model (neither
    /// the answering nor the requested one): `cost_nanos` is 0 and the
    /// answer's `cost` was null, so the cost is unknown, not nothing.
    pub unpriced: bool,
    /// The cache scope of `key_id` (its organisation's, else the key's
    /// own id), so cache reads and writes can be summed per scope.
    pub cache_scope: Option<String>,
}

impl UsageRow {
    /// Whether the client got a whole, successful answer.
    pub fn succeeded(&self) -> bool {
        self.status < 400 && self.error_class.is_none()
    }

    /// The model the row counts under: the one that answered, else the
    /// one asked for. (`store::usage` groups raw rows by the same rule in
    /// SQL: `COALESCE(model_answered, model_requested)`.)
    pub fn model(&self) -> Option<&str> {
        self.model_answered
            .as_deref()
            .or(self.model_requested.as_deref())
    }
}
