//! OpenAI Chat Completions shapes: the completion JSON, the chunk stream
//! (with the optional usage chunk and `[DONE]`), errors and rate-limit
//! headers, and the default answer of `POST /v1/chat/completions`
//! (protocols.md section (b)).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use uuid::Uuid;

use super::canned::Canned;
use super::prompt_cache::CacheUse;
use super::reasoning::reasoning_tokens;
use super::sse::SseFrame;
use super::{DEFAULT_PIECES, DEFAULT_TEXT, INPUT_TOKENS, OUTPUT_TOKENS, Settings};

/// The model a default answer names when the request names none.
pub const DEFAULT_OPENAI_MODEL: &str = "gpt-4o-mini";

/// A `chat.completion` with `text`, finish_reason `stop` and the fake's
/// usage (25 prompt, 86 completion, 111 total, no cached tokens).
pub fn openai_completion(text: &str, model: &str) -> Value {
    json!({
        "id": completion_id(),
        "object": "chat.completion",
        "created": now_secs(),
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text, "refusal": null},
            "logprobs": null,
            "finish_reason": "stop"
        }],
        "usage": usage(),
        "system_fingerprint": "fp_fake",
        "service_tier": "default"
    })
}

/// [`openai_stream_frames_for`] with the default model.
pub fn openai_stream_frames(pieces: &[&str], include_usage: bool) -> Vec<SseFrame> {
    openai_stream_frames_for(DEFAULT_OPENAI_MODEL, pieces, include_usage)
}

/// A whole streamed completion whose content is `pieces` concatenated: a
/// role chunk, one chunk per piece, a `stop` chunk, with `include_usage` a
/// usage chunk (`"choices": []`), then `data: [DONE]`. Every other chunk
/// carries `"usage": null`, as the API does.
pub fn openai_stream_frames_for(
    model: &str,
    pieces: &[&str],
    include_usage: bool,
) -> Vec<SseFrame> {
    let id = completion_id();
    let created = now_secs();
    let chunk = |choices: Value, usage: Value| {
        SseFrame::data(
            json!({
                "id": id, "object": "chat.completion.chunk", "created": created,
                "model": model, "system_fingerprint": "fp_fake",
                "choices": choices, "usage": usage
            })
            .to_string(),
        )
    };
    let choice = |delta: Value, finish: Value| json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]);
    let mut frames = vec![chunk(
        choice(json!({"role": "assistant", "content": ""}), Value::Null),
        Value::Null,
    )];
    frames.extend(
        pieces
            .iter()
            .map(|piece| chunk(choice(json!({"content": piece}), Value::Null), Value::Null)),
    );
    frames.push(chunk(choice(json!({}), json!("stop")), Value::Null));
    if include_usage {
        frames.push(chunk(json!([]), usage()));
    }
    frames.push(SseFrame::data("[DONE]"));
    frames
}

fn usage() -> Value {
    json!({
        "prompt_tokens": INPUT_TOKENS,
        "completion_tokens": OUTPUT_TOKENS,
        "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0}
    })
}

fn completion_id() -> String {
    format!("chatcmpl-fake{}", Uuid::new_v4().simple())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_secs())
        .unwrap_or_default()
}

/// OpenAI counts cached tokens inside `prompt_tokens` and bills no writes.
fn with_cache_use(usage: &mut Value, cache: CacheUse) {
    let prompt = INPUT_TOKENS + cache.read + cache.written;
    usage["prompt_tokens"] = prompt.into();
    usage["total_tokens"] = (prompt + OUTPUT_TOKENS).into();
    usage["prompt_tokens_details"]["cached_tokens"] = cache.read.into();
}

/// Reasoning tokens are a part of `completion_tokens`, not added to it.
fn with_reasoning(usage: &mut Value, request: &Value) {
    usage["completion_tokens_details"]["reasoning_tokens"] = reasoning_tokens(request).into();
}

/// The answer to an unscripted `POST /v1/chat/completions`.
pub(super) fn default_answer(request: &Value, settings: &Settings, cache: CacheUse) -> Canned {
    let model = request["model"].as_str().unwrap_or(DEFAULT_OPENAI_MODEL);
    let answer = if request["stream"].as_bool() == Some(true) {
        let include_usage = request["stream_options"]["include_usage"].as_bool() == Some(true);
        let mut frames = openai_stream_frames_for(model, &DEFAULT_PIECES, include_usage);
        // The usage chunk is the one before `[DONE]`.
        if include_usage
            && let Some(chunk) = frames.iter_mut().rev().nth(1)
            && let Ok(mut data) = serde_json::from_str::<Value>(&chunk.data)
        {
            with_cache_use(&mut data["usage"], cache);
            with_reasoning(&mut data["usage"], request);
            chunk.data = data.to_string();
        }
        Canned::sse(frames).paced(settings.stream_delay)
    } else {
        let mut completion = openai_completion(DEFAULT_TEXT, model);
        with_cache_use(&mut completion["usage"], cache);
        with_reasoning(&mut completion["usage"], request);
        Canned::json(200, completion)
    };
    with_rate_limit_headers(answer)
}

/// A request that is not JSON, answered the way the API would.
pub(super) fn bad_request() -> Canned {
    with_rate_limit_headers(Canned::openai_error(
        400,
        "invalid_request_error",
        None,
        "We could not parse the JSON body of your request.",
    ))
}

/// A request id and a comfortable requests window; the reset is a relative
/// Go-style duration (10,000 requests a minute refill one every 6 ms).
pub(super) fn with_rate_limit_headers(answer: Canned) -> Canned {
    answer
        .header("x-request-id", &format!("req_{}", Uuid::new_v4().simple()))
        .header("openai-processing-ms", "12")
        .header("x-ratelimit-limit-requests", "10000")
        .header("x-ratelimit-remaining-requests", "9999")
        .header("x-ratelimit-reset-requests", "6ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_usage_chunk_carries_usage_and_done_comes_last() {
        let frames = openai_stream_frames(&["Hel", "lo"], true);
        assert_eq!(frames[frames.len() - 1], SseFrame::data("[DONE]"));
        let chunks: Vec<Value> = frames[..frames.len() - 1]
            .iter()
            .map(|f| serde_json::from_str(&f.data).unwrap())
            .collect();
        let (usage_chunk, others) = chunks.split_last().unwrap();
        assert_eq!(usage_chunk["choices"], json!([]));
        assert_eq!(usage_chunk["usage"]["total_tokens"], 111);
        assert!(others.iter().all(|c| c["usage"].is_null()));
        assert_eq!(others[0]["choices"][0]["delta"]["role"], "assistant");
        let content: String = others
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(content, "Hello");
        assert_eq!(
            others[others.len() - 1]["choices"][0]["finish_reason"],
            "stop"
        );
        assert!(frames.iter().all(|f| f.event.is_none()));
    }

    #[test]
    fn without_include_usage_there_is_no_usage_chunk() {
        let frames = openai_stream_frames(&["x"], false);
        assert_eq!(frames.len(), 4);
    }
}
