//! Reading OpenAI's stream chunks: content deltas, the finish reason, the
//! usage-only chunk (`stream_options.include_usage`), `[DONE]`, and an
//! in-stream `{"error": ...}`.

use super::classify_stream_error;
use super::convert::usage_patch;
use super::wire::{Chunk, ErrorEnvelope};
use crate::domain::{Frame, FrameKind, Reading};

pub const DONE: &str = "[DONE]";

pub fn read_frame(frame: &Frame) -> Reading {
    if frame.data.trim() == DONE {
        return Reading {
            kind: FrameKind::Finished,
            ..Reading::default()
        };
    }
    if let Ok(error) = serde_json::from_str::<ErrorEnvelope>(&frame.data) {
        return Reading {
            kind: FrameKind::Error(Box::new(classify_stream_error(error.error))),
            ..Reading::default()
        };
    }
    let Ok(chunk) = serde_json::from_str::<Chunk>(&frame.data) else {
        return Reading::default();
    };
    let choice = chunk.choices.as_ref().and_then(|c| c.first());
    let delta = choice.and_then(|c| c.delta.as_ref());
    let text = delta
        .and_then(|d| d.content.clone())
        .filter(|t| !t.is_empty());
    let stop_reason = choice.and_then(|c| c.finish_reason.clone());
    let has_content = text.is_some()
        || stop_reason.is_some()
        || delta.is_some_and(|d| d.tool_calls.is_some() || d.refusal.is_some());
    Reading {
        kind: if has_content {
            FrameKind::Content
        } else {
            FrameKind::Meta
        },
        text,
        message_id: chunk.id,
        model: chunk.model,
        stop_reason,
        usage: chunk.usage.as_ref().map(usage_patch).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(data: &str) -> Frame {
        Frame {
            event: None,
            data: data.into(),
        }
    }

    #[test]
    fn role_only_chunks_are_not_content_but_text_is() {
        let first = read_frame(&frame(
            r#"{"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}"#,
        ));
        assert_eq!(first.kind, FrameKind::Meta);
        let text = read_frame(&frame(
            r#"{"id":"c1","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}"#,
        ));
        assert_eq!(
            (text.kind, text.text.as_deref()),
            (FrameKind::Content, Some("Hel"))
        );
        let usage = read_frame(&frame(
            r#"{"id":"c1","choices":[],"usage":{"prompt_tokens":13,"completion_tokens":5,"total_tokens":18,"prompt_tokens_details":{"cached_tokens":3},"completion_tokens_details":{"reasoning_tokens":4}}}"#,
        ));
        assert_eq!(usage.usage.input_tokens, Some(10));
        assert_eq!(usage.usage.cache_read_input_tokens, Some(3));
        assert_eq!(usage.usage.output_tokens, Some(5));
        assert_eq!(usage.usage.reasoning_tokens, Some(4));
        assert_eq!(read_frame(&frame("[DONE]")).kind, FrameKind::Finished);
    }

    #[test]
    fn an_error_chunk_is_an_error() {
        let reading = read_frame(&frame(
            r#"{"error":{"message":"boom","type":"server_error","code":null}}"#,
        ));
        assert!(matches!(reading.kind, FrameKind::Error(_)));
    }
}
