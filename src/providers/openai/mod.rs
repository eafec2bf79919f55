//! OpenAI's Chat Completions API: wire types, conversion from the gateway's
//! chat shape, error classification (including `insufficient_quota`, an
//! exhausted account rather than a rate limit) and stream reading.
//!
//! - `wire`: the API's JSON shapes.
//! - `convert`: a `ChatRequest` as a request body; a reply as a `ChatReply`.
//! - `classify`: a non-2xx answer or a stream error as a `Failure`.
//! - `stream`: one stream chunk as a `Reading`.
//! - `responses`: the Responses API's usage and stream events.

mod classify;
mod convert;
mod responses;
mod stream;
pub mod wire;

pub use classify::{classify, classify_stream_error};
pub use convert::{reply_from_bytes, request_body, stop_reason, usage_from_bytes};
pub use responses::{read_responses_frame, responses_usage};
pub use stream::read_frame;

pub const CHAT_PATH: &str = "/v1/chat/completions";
pub const EMBEDDINGS_PATH: &str = "/v1/embeddings";
pub const RESPONSES_PATH: &str = "/v1/responses";
