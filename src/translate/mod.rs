//! Serving OpenAI Chat Completions clients from Anthropic: a `claude-`
//! model on `/v1/chat/completions` is translated to the Messages API and its
//! answer (whole or streamed) back. Text, system prompt, stop sequences,
//! temperature, top_p, max tokens and usage are translated; tool calls and
//! non-text inputs are refused with a clear 400 rather than half-served.
//!
//! - `request`: an OpenAI request as the gateway's `ChatRequest`.
//! - `response`: an Anthropic reply as a `chat.completion`.
//! - `stream`: Anthropic stream events as `chat.completion.chunk`s.

mod request;
mod response;
mod stream;

pub use request::{Translated, to_anthropic};
pub use response::completion_from_reply;
pub use stream::AnthropicAsOpenAi;

/// OpenAI's `finish_reason` for an Anthropic `stop_reason`.
pub fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    }
}

/// Seconds since the epoch, for `created`.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
