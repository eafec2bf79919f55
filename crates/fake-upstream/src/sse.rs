//! One server-sent event as the fake writes it. Each frame becomes one body
//! chunk, so pacing and cutting work frame by frame.

use axum::body::Bytes;

/// One SSE event: an optional `event:` name and its `data:` payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseFrame {
    /// `event:` line; Anthropic names every event, OpenAI names none.
    pub event: Option<String>,
    /// The payload, usually one line of JSON (or `[DONE]`).
    pub data: String,
}

impl SseFrame {
    /// A frame with only a `data:` line (OpenAI style).
    pub fn data(data: impl Into<String>) -> Self {
        Self {
            event: None,
            data: data.into(),
        }
    }

    /// A named event (Anthropic style).
    pub fn event(name: impl Into<String>, data: impl Into<String>) -> Self {
        Self {
            event: Some(name.into()),
            data: data.into(),
        }
    }

    /// The wire form, ending with the blank line that closes an event. A
    /// payload with line breaks becomes several `data:` lines, as the SSE
    /// spec requires (a raw newline would end the field early).
    pub fn encode(&self) -> Bytes {
        let mut text = String::new();
        if let Some(event) = &self.event {
            text.push_str("event: ");
            text.push_str(event);
            text.push('\n');
        }
        for line in self.data.split('\n') {
            text.push_str("data: ");
            text.push_str(line);
            text.push('\n');
        }
        text.push('\n');
        Bytes::from(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_and_multiline_frames_encode_per_the_sse_spec() {
        assert_eq!(
            SseFrame::event("ping", r#"{"type":"ping"}"#).encode(),
            "event: ping\ndata: {\"type\":\"ping\"}\n\n"
        );
        assert_eq!(SseFrame::data("a\nb").encode(), "data: a\ndata: b\n\n");
    }
}
