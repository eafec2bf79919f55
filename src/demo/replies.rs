//! The simulated upstream's answers in each provider's wire format
//! (../shared/docs/protocols.md): whole messages, SSE streams, errors and
//! rate-limit headers.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use rand::seq::SliceRandom;
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy)]
pub enum Dialect {
    Anthropic,
    OpenAI,
}

const SENTENCES: &[&str] = &[
    "Key rotation spreads load across several API keys.",
    "A rate-limited key rests until its window refills.",
    "The gateway retries on another key when one fails.",
    "Cached prompts cost a tenth of fresh input tokens.",
    "Streaming sends each piece of the answer as it is written.",
    "Every request leaves one row in the usage ledger.",
];

/// One answer's text and token counts.
pub struct Reply {
    pub model: String,
    pub pieces: Vec<String>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
}

impl Reply {
    /// Token counts like an assistant's: a growing conversation in, a few
    /// sentences out, and now and then a cache hit.
    pub fn random(model: &str) -> Self {
        let mut rng = rand::thread_rng();
        let count = rng.gen_range(2..6);
        let pieces: Vec<String> = (0..count)
            .filter_map(|_| SENTENCES.choose(&mut rng))
            .map(|s| format!("{s} "))
            .collect();
        let cache_read_tokens = if rng.gen_bool(0.4) {
            rng.gen_range(1000..6000)
        } else {
            0
        };
        Self {
            model: model.to_string(),
            pieces,
            input_tokens: rng.gen_range(150..3500),
            output_tokens: rng.gen_range(60..900),
            cache_read_tokens,
        }
    }

    fn text(&self) -> String {
        self.pieces.concat()
    }
}

pub fn error(dialect: Dialect, status: u16, error_type: &str, message: &str) -> Response {
    let body = match dialect {
        Dialect::Anthropic => {
            json!({"type": "error", "error": {"type": error_type, "message": message}})
        }
        Dialect::OpenAI => {
            let kind = if status == 401 {
                "invalid_request_error"
            } else {
                error_type
            };
            json!({"error": {"message": message, "type": kind, "param": null, "code": null}})
        }
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(body)).into_response()
}

pub fn whole(dialect: Dialect, reply: &Reply) -> Value {
    match dialect {
        Dialect::Anthropic => json!({
            "id": message_id(), "type": "message", "role": "assistant", "model": reply.model,
            "content": [{"type": "text", "text": reply.text()}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {
                "input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens,
                "cache_creation_input_tokens": 0, "cache_read_input_tokens": reply.cache_read_tokens
            }
        }),
        Dialect::OpenAI => json!({
            "id": message_id(), "object": "chat.completion", "created": 0, "model": reply.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.text()},
                         "finish_reason": "stop"}],
            "usage": openai_usage(reply)
        }),
    }
}

fn openai_usage(reply: &Reply) -> Value {
    json!({
        "prompt_tokens": reply.input_tokens + reply.cache_read_tokens,
        "completion_tokens": reply.output_tokens,
        "total_tokens": reply.input_tokens + reply.cache_read_tokens + reply.output_tokens,
        "prompt_tokens_details": {"cached_tokens": reply.cache_read_tokens}
    })
}

/// The SSE events of a streamed answer, one chunk each.
pub fn stream(dialect: Dialect, reply: &Reply, include_usage: bool) -> Vec<Bytes> {
    match dialect {
        Dialect::Anthropic => anthropic_stream(reply),
        Dialect::OpenAI => openai_stream(reply, include_usage),
    }
}

fn event(name: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

fn data(data: &str) -> Bytes {
    Bytes::from(format!("data: {data}\n\n"))
}

fn anthropic_stream(reply: &Reply) -> Vec<Bytes> {
    let mut events = vec![
        event(
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": message_id(), "type": "message", "role": "assistant", "model": reply.model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": reply.input_tokens, "output_tokens": 1,
                          "cache_creation_input_tokens": 0,
                          "cache_read_input_tokens": reply.cache_read_tokens}}}),
        ),
        event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": 0,
                    "content_block": {"type": "text", "text": ""}}),
        ),
        event("ping", &json!({"type": "ping"})),
    ];
    for piece in &reply.pieces {
        events.push(event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": piece}}),
        ));
    }
    events.push(event(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": 0}),
    ));
    events.push(event(
        "message_delta",
        &json!({"type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                "usage": {"output_tokens": reply.output_tokens}}),
    ));
    events.push(event("message_stop", &json!({"type": "message_stop"})));
    events
}

fn openai_stream(reply: &Reply, include_usage: bool) -> Vec<Bytes> {
    let id = message_id();
    let chunk = |delta: Value, finish: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "created": 0, "model": reply.model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        .to_string()
    };
    let mut events = vec![data(&chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    ))];
    for piece in &reply.pieces {
        events.push(data(&chunk(json!({"content": piece}), Value::Null)));
    }
    events.push(data(&chunk(json!({}), json!("stop"))));
    if include_usage {
        events.push(data(
            &json!({"id": id, "object": "chat.completion.chunk", "created": 0,
                    "model": reply.model, "choices": [], "usage": openai_usage(reply)})
            .to_string(),
        ));
    }
    events.push(data("[DONE]"));
    events
}

/// The rate-limit headers each provider sends with an answer.
pub fn rate_limit_headers(dialect: Dialect, headers: &mut HeaderMap, limit: u32, remaining: u32) {
    let names = match dialect {
        Dialect::Anthropic => [
            "anthropic-ratelimit-requests-limit",
            "anthropic-ratelimit-requests-remaining",
        ],
        Dialect::OpenAI => [
            "x-ratelimit-limit-requests",
            "x-ratelimit-remaining-requests",
        ],
    };
    for (name, value) in names.into_iter().zip([limit, remaining]) {
        headers.insert(name, HeaderValue::from(value));
    }
}

fn message_id() -> String {
    format!("msg_demo_{:016x}", rand::thread_rng().r#gen::<u64>())
}
