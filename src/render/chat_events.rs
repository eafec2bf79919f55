//! `/api/chat` streaming events, one `data: <json>` per event:
//! `start` (id, provider, model, key), `delta` per text piece, then `done`
//! (stop reason, usage, cost, attempts) or, after a failure, `error`, never
//! a clean `done`.

use serde_json::json;

use crate::error::{Dialect, error_body};
use crate::gateway::relay::{Render, write_event};
use crate::gateway::stream::{Frame, FrameKind, Reading};
use crate::gateway::{UpstreamDetail, Usage};
use crate::pricing;
use crate::providers::{ProviderKind, stop_reason_normalizer};

pub struct ChatEvents {
    provider: ProviderKind,
    key_id: String,
    attempts: u32,
    id: Option<String>,
    model: String,
    usage: Usage,
    stop_reason: Option<String>,
    started: bool,
    /// Maps the provider's stop reasons into `/api/chat`'s vocabulary.
    normalize_stop: fn(&str) -> String,
}

impl ChatEvents {
    pub fn new(
        provider: ProviderKind,
        requested_model: String,
        key_id: String,
        attempts: u32,
    ) -> Self {
        Self {
            provider,
            key_id,
            attempts,
            id: None,
            model: requested_model,
            usage: Usage::default(),
            stop_reason: None,
            started: false,
            normalize_stop: stop_reason_normalizer(provider),
        }
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let event = json!({
            "type": "start",
            "id": self.id,
            "provider": self.provider.as_str(),
            "model": self.model,
            "key": self.key_id,
        });
        write_event(out, None, &event.to_string());
    }
}

impl Render for ChatEvents {
    fn frame(&mut self, _frame: &Frame, reading: &Reading, out: &mut Vec<u8>) {
        if let Some(id) = &reading.message_id {
            self.id.get_or_insert_with(|| id.clone());
        }
        if let Some(model) = &reading.model {
            self.model.clone_from(model);
        }
        if let Some(stop) = &reading.stop_reason {
            self.stop_reason = Some((self.normalize_stop)(stop));
        }
        self.usage.apply(&reading.usage);
        if matches!(reading.kind, FrameKind::Content | FrameKind::Finished) {
            self.start(out);
        }
        if let Some(text) = &reading.text {
            write_event(
                out,
                None,
                &json!({"type": "delta", "text": text}).to_string(),
            );
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        self.start(out);
        let mut usage = serde_json::to_value(self.usage).unwrap_or_default();
        usage["total_tokens"] = json!(self.usage.total_tokens());
        let event = json!({
            "type": "done",
            "stop_reason": self.stop_reason,
            "usage": usage,
            "cost": pricing::cost_of(self.provider, &self.model, &self.usage),
            "attempts": self.attempts,
        });
        write_event(out, None, &event.to_string());
    }

    fn fail(&mut self, error: &UpstreamDetail, out: &mut Vec<u8>) {
        let mut event = error_body(Dialect::Gateway, &error.error_type, &error.message);
        event["type"] = json!("error");
        write_event(out, None, &event.to_string());
    }
}
