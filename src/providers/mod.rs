//! The upstream providers: how to reach each one and how to read it. Each
//! provider has its own module with wire types, conversion to and from the
//! gateway's chat shape, stream-frame reading and error classification;
//! `upstream` is the one place that dispatches to them.
//!
//! - `upstream`: the shared HTTP client, endpoints, sending and probing.
//! - `endpoint`: which of a provider's APIs a call goes to, and how its
//!   answer is accounted.
//! - `anthropic`, `openai`: one module per provider.
//! - `search`: the web-search providers (SerpApi, Google, Brave).
//! - `ratelimit`: rate-limit headers as `RateLimits` and cooldown hints.
//! - `retry_after`: `retry-after-ms` / `retry-after` as a wait.
//! - `error_text`: a short excerpt of an error body that is not JSON.

pub mod anthropic;
mod endpoint;
mod error_text;
pub mod openai;
mod ratelimit;
mod retry_after;
pub mod search;
mod upstream;

pub use endpoint::Endpoint;
pub use ratelimit::{cooldown_hint, rate_limits};
pub use retry_after::parse_retry_after;
pub use upstream::{
    BoundResource, ERROR_BODY_LIMIT, UpstreamCall, Upstreams, UpstreamsError, frame_reader,
    parse_reply, reply_usage, stop_reason_normalizer,
};
