//! The vocabulary every other module speaks, depending on nothing above it
//! (only on `scrub`, to clean upstream text): which provider, which key,
//! what an attempt did, what a chat request and its usage are, what a
//! stream frame means.
//!
//! - `provider`: `ProviderKind`, parsed from text once at the edge.
//! - `key`: `KeyId`, the decrypted `KeyEntry`, the per-attempt `KeyLease`.
//! - `key_fields`: a key, its label and its weight as checked input.
//! - `failure`: `Failure` (whose fault an attempt's failure was) and the
//!   `Outcome` the pool records for the key.
//! - `chat`: the provider-neutral chat request and reply.
//! - `client_keys`: the keys clients present, kept as digests.
//! - `usage`: token counts of an answer and of a stream frame.
//! - `usage_row`: one request's row in the usage ledger.
//! - `latency`: latencies counted in log-scale buckets, for percentiles.
//! - `frame`: one upstream SSE event and its reading.
//! - `rate_limits`: what an upstream's rate-limit headers say is left.
//! - `resource`: resources only their creating key can see, and their
//!   lifetimes.
//! - `browser`: the origins CORS allows and the `Host` names answered.

pub mod browser;
pub mod chat;
pub mod client_keys;
pub mod failure;
pub mod frame;
pub mod key;
pub mod key_fields;
pub mod latency;
pub mod provider;
pub mod rate_limits;
pub mod resource;
pub mod usage;
pub mod usage_row;

use std::time::Duration;

pub use chat::{
    ChatContent, ChatMessage, ChatParts, ChatReply, ChatRequest, ChatRole, DEFAULT_MAX_TOKENS,
};
pub use client_keys::ClientKeys;
pub use failure::{Failure, FailureNote, Outcome, UpstreamDetail};
pub use frame::{Frame, FrameKind, Reading};
pub use key::{KeyEntry, KeyId, KeyLease};
pub use latency::LatencyHistogram;
pub use provider::{ProviderEnv, ProviderKind, UnknownProvider};
pub use rate_limits::{RateLimits, Window};
pub use resource::{ResourceBinding, ResourceKind};
pub use usage::{Usage, UsagePatch};
pub use usage_row::UsageRow;

/// Whole seconds, rounded up, so "0" only ever means "now".
pub fn ceil_secs(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}
