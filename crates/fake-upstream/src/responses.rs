//! OpenAI's Responses API and embeddings, and Anthropic's token counting,
//! as the fake answers them by default (protocols.md section (d)): a
//! response object or its named event stream, stored per key unless
//! `store: false`; an embeddings list with its usage; a token count.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use uuid::Uuid;

use super::canned::Canned;
use super::openai::with_rate_limit_headers;
use super::reasoning::reasoning_tokens;
use super::sse::SseFrame;
use super::{DEFAULT_PIECES, DEFAULT_TEXT, INPUT_TOKENS, OUTPUT_TOKENS};

/// Prompt tokens an embeddings answer reports per input.
pub const EMBEDDING_TOKENS_PER_INPUT: u64 = 8;
/// Length of each fake embedding vector.
const EMBEDDING_DIMENSIONS: usize = 4;

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_secs())
        .unwrap_or_default()
}

/// A completed `response` object answering with `text`; `previous` and
/// `store` are echoed as the API does.
pub fn response_object(model: &str, text: &str, previous: Option<&str>, store: bool) -> Value {
    json!({
        "id": format!("resp_fake{}", Uuid::new_v4().simple()),
        "object": "response",
        "created_at": now_secs(),
        "status": "completed",
        "background": false,
        "error": null,
        "incomplete_details": null,
        "instructions": null,
        "max_output_tokens": null,
        "model": model,
        "output": [{
            "type": "message",
            "id": format!("msg_fake{}", Uuid::new_v4().simple()),
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}]
        }],
        "parallel_tool_calls": true,
        "previous_response_id": previous,
        "store": store,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": {
            "input_tokens": INPUT_TOKENS,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": OUTPUT_TOKENS,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS
        },
        "metadata": {}
    })
}

/// The named events that stream `response` (a completed response object
/// from [`response_object`]), its text split into `pieces`: created, in
/// progress, the item and part opened, one delta per piece, the text,
/// part and item done, then `response.completed` with the usage.
pub fn response_stream_frames(response: &Value, pieces: &[&str]) -> Vec<SseFrame> {
    let item = &response["output"][0];
    let item_id = item["id"].as_str().unwrap_or_default();
    let mut opening = response.clone();
    opening["status"] = json!("in_progress");
    opening["output"] = json!([]);
    opening["usage"] = Value::Null;
    let mut empty_item = item.clone();
    empty_item["status"] = json!("in_progress");
    empty_item["content"] = json!([]);
    let text: String = pieces.concat();
    let part = json!({"type": "output_text", "text": text, "annotations": []});
    let at = |extra: Value| {
        let mut event = json!({"item_id": item_id, "output_index": 0, "content_index": 0});
        if let (Some(event), Some(extra)) = (event.as_object_mut(), extra.as_object()) {
            event.extend(extra.clone());
        }
        event
    };
    let mut events = vec![
        json!({"type": "response.created", "response": opening}),
        json!({"type": "response.in_progress", "response": opening}),
        json!({"type": "response.output_item.added", "output_index": 0, "item": empty_item}),
        at(json!({"type": "response.content_part.added",
                  "part": {"type": "output_text", "text": "", "annotations": []}})),
    ];
    events.extend(
        pieces
            .iter()
            .map(|piece| at(json!({"type": "response.output_text.delta", "delta": piece}))),
    );
    events.push(at(
        json!({"type": "response.output_text.done", "text": text}),
    ));
    events.push(at(
        json!({"type": "response.content_part.done", "part": part}),
    ));
    events.push(json!({"type": "response.output_item.done", "output_index": 0, "item": item}));
    events.push(json!({"type": "response.completed", "response": response}));
    events
        .into_iter()
        .enumerate()
        .map(|(sequence, mut event)| {
            event["sequence_number"] = json!(sequence);
            let name = event["type"].as_str().unwrap_or_default().to_string();
            SseFrame::event(name, event.to_string())
        })
        .collect()
}

/// The answer to `POST /v1/responses` that made `response`.
pub(super) fn created(response: &Value, stream: bool) -> Canned {
    with_rate_limit_headers(if stream {
        Canned::sse(response_stream_frames(response, &DEFAULT_PIECES))
    } else {
        Canned::json(200, response.clone())
    })
}

/// A new response for `request` (background ones start queued).
pub(super) fn new_response(request: &Value) -> Value {
    let model = request["model"].as_str().unwrap_or("gpt-4o-mini");
    let store = request["store"].as_bool().unwrap_or(true);
    let previous = request["previous_response_id"].as_str();
    let mut response = response_object(model, DEFAULT_TEXT, previous, store);
    // A part of `output_tokens`, not added to it.
    response["usage"]["output_tokens_details"]["reasoning_tokens"] =
        reasoning_tokens(request).into();
    if request["background"].as_bool() == Some(true) {
        response["background"] = json!(true);
        response["status"] = json!("queued");
        response["output"] = json!([]);
        response["usage"] = Value::Null;
    }
    response
}

/// `POST /v1/embeddings`: one vector per input (a string or an array of
/// strings or token arrays), 8 prompt tokens each.
pub(super) fn embeddings(request: &Value) -> Canned {
    let model = request["model"]
        .as_str()
        .unwrap_or("text-embedding-3-small");
    let inputs = match &request["input"] {
        Value::Array(items) if items.iter().all(|i| !i.is_number()) => items.len(),
        _ => 1,
    };
    let data: Vec<Value> = (0..inputs)
        .map(|index| {
            let vector: Vec<f64> = (0..EMBEDDING_DIMENSIONS)
                .map(|d| ((index + d) % 7) as f64 / 10.0)
                .collect();
            json!({"object": "embedding", "index": index, "embedding": vector})
        })
        .collect();
    let tokens = inputs as u64 * EMBEDDING_TOKENS_PER_INPUT;
    with_rate_limit_headers(Canned::json(
        200,
        json!({"object": "list", "data": data, "model": model,
               "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}),
    ))
}

/// `POST /v1/messages/count_tokens`: the fake's usual input count.
pub(super) fn token_count() -> Canned {
    Canned::json(200, json!({"input_tokens": INPUT_TOKENS}))
}

/// OpenAI's 404 for a resource the calling key cannot see.
pub(super) fn not_found(what: &str, id: &str, code: Option<&str>, param: Option<&str>) -> Canned {
    Canned::json(
        404,
        json!({"error": {"message": format!("{what} with id '{id}' not found."),
                         "type": "invalid_request_error", "param": param, "code": code}}),
    )
}
