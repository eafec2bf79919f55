//! Anthropic Messages shapes: the message JSON, the SSE event sequence, the
//! models list, errors and rate-limit headers, and the default answer of
//! `POST /v1/messages` (protocols.md section (a)).

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use uuid::Uuid;

use super::canned::Canned;
use super::prompt_cache::CacheUse;
use super::sse::SseFrame;
use super::{DEFAULT_PIECES, DEFAULT_TEXT, INPUT_TOKENS, OUTPUT_TOKENS, Settings};

/// The model a default answer names when the request names none.
pub const DEFAULT_ANTHROPIC_MODEL: &str = "claude-sonnet-4-20250514";

/// A complete assistant message with one text block and the fake's usage
/// (25 input, 86 output tokens, no cache).
pub fn anthropic_message(text: &str, model: &str) -> Value {
    json!({
        "id": message_id(),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": null,
        "usage": {
            "input_tokens": INPUT_TOKENS,
            "output_tokens": OUTPUT_TOKENS,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0
        }
    })
}

/// [`anthropic_stream_frames_for`] with the default model.
pub fn anthropic_stream_frames(pieces: &[&str]) -> Vec<SseFrame> {
    anthropic_stream_frames_for(DEFAULT_ANTHROPIC_MODEL, pieces)
}

/// A whole streamed message whose text is `pieces` concatenated:
/// `message_start` (25 input tokens, 1 output), `content_block_start`, a
/// `ping`, one `text_delta` per piece, `content_block_stop`, `message_delta`
/// (end_turn, 86 output tokens), `message_stop`.
pub fn anthropic_stream_frames_for(model: &str, pieces: &[&str]) -> Vec<SseFrame> {
    let mut frames = vec![
        event(json!({
            "type": "message_start",
            "message": {
                "id": message_id(), "type": "message", "role": "assistant", "model": model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {
                    "input_tokens": INPUT_TOKENS, "output_tokens": 1,
                    "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0
                }
            }
        })),
        event(json!({
            "type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}
        })),
        // Where the real API sends its first keep-alive.
        event(json!({"type": "ping"})),
    ];
    frames.extend(pieces.iter().map(|piece| {
        event(json!({
            "type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": piece}
        }))
    }));
    frames.extend([
        event(json!({"type": "content_block_stop", "index": 0})),
        event(json!({
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": null},
            "usage": {"output_tokens": OUTPUT_TOKENS}
        })),
        event(json!({"type": "message_stop"})),
    ]);
    frames
}

/// Anthropic names each event after its JSON `type`.
fn event(data: Value) -> SseFrame {
    let name = data["type"].as_str().unwrap_or_default().to_string();
    SseFrame::event(name, data.to_string())
}

fn message_id() -> String {
    format!("msg_fake{}", Uuid::new_v4().simple())
}

/// The answer to an unscripted `POST /v1/messages`.
pub(super) fn default_answer(request: &Value, settings: &Settings, cache: CacheUse) -> Canned {
    let model = request["model"].as_str().unwrap_or(DEFAULT_ANTHROPIC_MODEL);
    let answer = if request["stream"].as_bool() == Some(true) {
        let mut frames = anthropic_stream_frames_for(model, &DEFAULT_PIECES);
        if let Some(start) = frames.first_mut()
            && let Ok(mut data) = serde_json::from_str::<Value>(&start.data)
        {
            with_cache_use(&mut data["message"]["usage"], cache);
            start.data = data.to_string();
        }
        Canned::sse(frames).paced(settings.stream_delay)
    } else {
        let mut message = anthropic_message(DEFAULT_TEXT, model);
        with_cache_use(&mut message["usage"], cache);
        Canned::json(200, message)
    };
    with_rate_limit_headers(answer)
}

fn with_cache_use(usage: &mut Value, cache: CacheUse) {
    usage["cache_read_input_tokens"] = cache.read.into();
    usage["cache_creation_input_tokens"] = cache.written.into();
}

/// The answer to an unscripted `GET /v1/models`: a short, newest-first list.
pub(super) fn models_list() -> Canned {
    let models = [
        (
            "claude-opus-4-20250514",
            "Claude Opus 4",
            "2025-05-22T00:00:00Z",
        ),
        (
            "claude-sonnet-4-20250514",
            "Claude Sonnet 4",
            "2025-05-22T00:00:00Z",
        ),
        (
            "claude-3-5-haiku-20241022",
            "Claude Haiku 3.5",
            "2024-10-22T00:00:00Z",
        ),
    ];
    let data: Vec<Value> = models
        .iter()
        .map(|(id, name, created)| {
            json!({"type": "model", "id": id, "display_name": name, "created_at": created})
        })
        .collect();
    with_rate_limit_headers(Canned::json(
        200,
        json!({
            "data": data,
            "has_more": false,
            "first_id": models[0].0,
            "last_id": models[models.len() - 1].0
        }),
    ))
}

/// A request that is not JSON, answered the way the API would.
pub(super) fn bad_request() -> Canned {
    with_rate_limit_headers(Canned::error(
        400,
        "invalid_request_error",
        "The request body is not valid JSON.",
    ))
}

/// A request id and a comfortable requests window; the reset is absolute
/// (RFC 3339), unlike OpenAI's relative durations.
fn with_rate_limit_headers(answer: Canned) -> Canned {
    let reset = humantime::format_rfc3339_seconds(SystemTime::now() + Duration::from_secs(60));
    answer
        .header(
            "request-id",
            &format!("req_fake{}", Uuid::new_v4().simple()),
        )
        .header("anthropic-ratelimit-requests-limit", "4000")
        .header("anthropic-ratelimit-requests-remaining", "3999")
        .header("anthropic-ratelimit-requests-reset", &reset.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_deltas_rebuild_the_text_and_usage_comes_from_start_and_last_delta() {
        let frames = anthropic_stream_frames(&["Hel", "lo"]);
        let events: Vec<Value> = frames
            .iter()
            .map(|f| serde_json::from_str(&f.data).unwrap())
            .collect();
        for (frame, data) in frames.iter().zip(&events) {
            assert_eq!(frame.event.as_deref(), data["type"].as_str());
        }
        let text: String = events
            .iter()
            .filter_map(|e| e["delta"]["text"].as_str())
            .collect();
        assert_eq!(text, "Hello");
        assert_eq!(events[0]["message"]["usage"]["input_tokens"], 25);
        assert_eq!(events[events.len() - 2]["usage"]["output_tokens"], 86);
        assert_eq!(events[events.len() - 1]["type"], "message_stop");
    }
}
