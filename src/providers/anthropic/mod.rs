//! Anthropic's Messages API: wire types, conversion from the gateway's chat
//! shape, error classification and stream reading.
//!
//! - `wire`: the API's JSON shapes.
//! - `convert`: a `ChatRequest` as a request body; a reply as a `ChatReply`.
//! - `classify`: a non-2xx answer (429, 401, 529, …) or a stream `error`
//!   event as a `Failure`, with the cooldown hint from its headers.
//! - `stream`: one stream event as a `Reading`.

mod classify;
mod convert;
mod stream;
pub mod wire;

pub use classify::{classify, classify_stream_error};
pub use convert::{
    check_token_count, reply_from_bytes, reply_from_wire, request_body, usage_from_bytes,
};
pub use stream::read_frame;

/// The API version keygate speaks upstream when the client names none.
pub const API_VERSION: &str = "2023-06-01";
pub const MESSAGES_PATH: &str = "/v1/messages";
pub const COUNT_TOKENS_PATH: &str = "/v1/messages/count_tokens";
