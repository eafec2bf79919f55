//! OpenAI's Chat Completions API: wire types, conversion from the gateway's
//! chat shape, error classification (including `insufficient_quota`, an
//! exhausted account rather than a rate limit) and stream reading.

mod classify;
mod convert;
mod stream;
pub mod wire;

pub use classify::{classify, classify_stream_error};
pub use convert::{reply_from_bytes, request_body, stop_reason};
pub use stream::read_frame;

pub const CHAT_PATH: &str = "/v1/chat/completions";
