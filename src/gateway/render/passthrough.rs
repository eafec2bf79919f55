//! Re-sending the provider's own stream to a client of the same API. Frames
//! are written back as they came; a failure after the gate ends the stream
//! with an error in that API's shape (Anthropic: `event: error`; OpenAI
//! chat: a `data:` line holding `{"error": ...}`; OpenAI Responses: its
//! own `error` event, `{"type": "error", "code", "message"}`).

use crate::domain::{Frame, FrameKind, Reading, UpstreamDetail};
use crate::error::{Dialect, error_body};
use crate::gateway::relay::{Render, write_event};

pub struct Passthrough {
    dialect: Dialect,
    /// keygate asked OpenAI for the usage chunk; a client that did not ask
    /// for it does not get it.
    drop_usage_chunk: bool,
    /// The Responses API's streams end a failure with their own event.
    responses_events: bool,
}

impl Passthrough {
    pub fn anthropic() -> Self {
        Self {
            dialect: Dialect::Anthropic,
            drop_usage_chunk: false,
            responses_events: false,
        }
    }

    pub fn openai(client_asked_for_usage: bool) -> Self {
        Self {
            dialect: Dialect::OpenAI,
            drop_usage_chunk: !client_asked_for_usage,
            responses_events: false,
        }
    }

    /// OpenAI's Responses API: named events, each passed as it came.
    pub fn openai_responses() -> Self {
        Self {
            dialect: Dialect::OpenAI,
            drop_usage_chunk: false,
            responses_events: true,
        }
    }
}

impl Render for Passthrough {
    fn frame(&mut self, frame: &Frame, reading: &Reading, out: &mut Vec<u8>) {
        let usage_only = reading.kind == FrameKind::Meta && reading.usage.output_tokens.is_some();
        if self.drop_usage_chunk && usage_only {
            return;
        }
        write_event(out, frame.event.as_deref(), &frame.data);
    }

    fn finish(&mut self, _out: &mut Vec<u8>) {}

    fn fail(&mut self, error: &UpstreamDetail, out: &mut Vec<u8>) {
        if self.responses_events {
            let body = serde_json::json!({
                "type": "error", "code": error.error_type, "message": error.message, "param": null
            });
            write_event(out, Some("error"), &body.to_string());
            return;
        }
        let body = error_body(self.dialect, &error.error_type, &error.message).to_string();
        let event = (self.dialect == Dialect::Anthropic).then_some("error");
        write_event(out, event, &body);
    }
}
