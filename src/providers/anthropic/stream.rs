//! Reading Anthropic's stream events: text deltas, usage (input from
//! `message_start`, cumulative output from the last `message_delta`), the
//! stop reason, the end (`message_stop`) and in-stream errors. Unknown event
//! types are bookkeeping, passed on untouched.

use serde::Deserialize;
use serde_json::Value;

use super::classify_stream_error;
use super::wire::{ErrorBody, WireUsage};
use crate::domain::{Frame, FrameKind, Reading, UsagePatch};

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event {
    MessageStart {
        message: StartMessage,
    },
    ContentBlockStart {},
    ContentBlockDelta {
        delta: Value,
    },
    MessageDelta {
        #[serde(default)]
        delta: Option<MessageDeltaBody>,
        #[serde(default)]
        usage: Option<DeltaUsage>,
    },
    MessageStop {},
    Error {
        error: ErrorBody,
    },
}

#[derive(Deserialize)]
struct StartMessage {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct MessageDeltaBody {
    #[serde(default)]
    stop_reason: Option<String>,
}

#[derive(Deserialize)]
struct DeltaUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

pub fn read_frame(frame: &Frame) -> Reading {
    let Ok(event) = serde_json::from_str::<Event>(&frame.data) else {
        // ping, content_block_stop and event types added later.
        return Reading::default();
    };
    match event {
        Event::MessageStart { message } => Reading {
            message_id: message.id,
            model: message.model,
            usage: message.usage.map(|u| start_usage(&u)).unwrap_or_default(),
            ..Reading::default()
        },
        // A block starting is not yet content: the first delta is.
        Event::ContentBlockStart {} => Reading::default(),
        Event::ContentBlockDelta { delta } => Reading {
            kind: FrameKind::Content,
            text: (delta.get("type").and_then(Value::as_str) == Some("text_delta"))
                .then(|| delta.get("text").and_then(Value::as_str).map(String::from))
                .flatten(),
            ..Reading::default()
        },
        Event::MessageDelta { delta, usage } => Reading {
            kind: FrameKind::Content,
            stop_reason: delta.and_then(|d| d.stop_reason),
            usage: usage
                .map(|u| UsagePatch {
                    input_tokens: u.input_tokens,
                    output_tokens: u.output_tokens,
                    cache_creation_input_tokens: u.cache_creation_input_tokens,
                    cache_read_input_tokens: u.cache_read_input_tokens,
                    cache_creation_1h_tokens: None,
                    reasoning_tokens: None,
                })
                .unwrap_or_default(),
            ..Reading::default()
        },
        Event::MessageStop {} => Reading {
            kind: FrameKind::Finished,
            ..Reading::default()
        },
        Event::Error { error } => Reading {
            kind: FrameKind::Error(Box::new(classify_stream_error(error))),
            ..Reading::default()
        },
    }
}

fn start_usage(usage: &WireUsage) -> UsagePatch {
    UsagePatch {
        input_tokens: Some(usage.input_tokens),
        output_tokens: Some(usage.output_tokens),
        cache_creation_input_tokens: usage.cache_creation_input_tokens,
        cache_creation_1h_tokens: usage
            .cache_creation
            .as_ref()
            .and_then(|c| c.ephemeral_1h_input_tokens),
        cache_read_input_tokens: usage.cache_read_input_tokens,
        reasoning_tokens: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Failure;

    fn frame(data: &str) -> Frame {
        Frame {
            event: None,
            data: data.into(),
        }
    }

    #[test]
    fn reads_the_events_that_matter() {
        let start = read_frame(&frame(
            r#"{"type":"message_start","message":{"id":"msg_1","model":"claude-x","content":[],"usage":{"input_tokens":25,"output_tokens":1}}}"#,
        ));
        assert_eq!(start.kind, FrameKind::Meta);
        assert_eq!(start.message_id.as_deref(), Some("msg_1"));
        assert_eq!(start.usage.input_tokens, Some(25));
        let delta = read_frame(&frame(
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#,
        ));
        assert_eq!(
            (delta.kind, delta.text.as_deref()),
            (FrameKind::Content, Some("Hi"))
        );
        let end = read_frame(&frame(
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}"#,
        ));
        assert_eq!(end.stop_reason.as_deref(), Some("end_turn"));
        assert_eq!(end.usage.output_tokens, Some(15));
        assert_eq!(
            read_frame(&frame(r#"{"type":"message_stop"}"#)).kind,
            FrameKind::Finished
        );
        assert_eq!(
            read_frame(&frame(r#"{"type":"ping"}"#)).kind,
            FrameKind::Meta
        );
        assert_eq!(read_frame(&frame("not json")).kind, FrameKind::Meta);
    }

    #[test]
    fn an_overloaded_error_event_is_a_provider_fault() {
        let reading = read_frame(&frame(
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        ));
        match reading.kind {
            FrameKind::Error(failure) => assert!(matches!(*failure, Failure::ProviderFault(_))),
            other => panic!("expected an error, got {other:?}"),
        }
    }
}
