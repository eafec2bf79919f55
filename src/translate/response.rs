//! An Anthropic reply as an OpenAI `chat.completion`.

use serde_json::{Value, json};

use super::{finish_reason, unix_now};
use crate::domain::{ChatReply, Usage};

pub fn completion_from_reply(reply: &ChatReply) -> Value {
    json!({
        "id": format!("chatcmpl-{}", reply.id),
        "object": "chat.completion",
        "created": unix_now(),
        "model": reply.model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": reply.content, "refusal": null},
            "logprobs": null,
            "finish_reason": finish_reason(reply.stop_reason.as_deref().unwrap_or("end_turn")),
        }],
        "usage": openai_usage(&reply.usage),
    })
}

/// OpenAI counts cached prompt tokens inside `prompt_tokens`.
pub fn openai_usage(usage: &Usage) -> Value {
    let prompt =
        usage.input_tokens + usage.cache_creation_input_tokens + usage.cache_read_input_tokens;
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": usage.output_tokens,
        "total_tokens": prompt + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_input_tokens},
    })
}
