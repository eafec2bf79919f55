//! Anthropic stream events re-written as OpenAI `chat.completion.chunk`s:
//! a role chunk at `message_start`, a content chunk per text delta, a
//! finish chunk at the stop reason, the usage chunk if the client asked,
//! then `[DONE]`.

use serde_json::{Value, json};

use super::response::openai_usage;
use super::{finish_reason, unix_now};
use crate::domain::{Frame, Reading, UpstreamDetail, Usage};
use crate::error::{Dialect, error_body};
use crate::gateway::relay::{Render, write_event};

pub struct AnthropicAsOpenAi {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    usage: Usage,
}

impl AnthropicAsOpenAi {
    pub fn new(model: String, include_usage: bool) -> Self {
        Self {
            id: "chatcmpl-keygate".into(),
            model,
            created: unix_now(),
            include_usage,
            usage: Usage::default(),
        }
    }

    fn chunk(&self, choices: Value, usage: Value, out: &mut Vec<u8>) {
        let mut chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        });
        if self.include_usage {
            chunk["usage"] = usage;
        }
        write_event(out, None, &chunk.to_string());
    }

    fn delta(&self, delta: Value, finish: Option<&str>, out: &mut Vec<u8>) {
        let choice =
            json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]);
        self.chunk(choice, Value::Null, out);
    }
}

impl Render for AnthropicAsOpenAi {
    fn frame(&mut self, _frame: &Frame, reading: &Reading, out: &mut Vec<u8>) {
        self.usage.apply(&reading.usage);
        if let Some(id) = &reading.message_id {
            self.id = format!("chatcmpl-{id}");
            if let Some(model) = &reading.model {
                self.model.clone_from(model);
            }
            self.delta(json!({"role": "assistant", "content": ""}), None, out);
        }
        if let Some(text) = &reading.text {
            self.delta(json!({"content": text}), None, out);
        }
        if let Some(stop) = &reading.stop_reason {
            self.delta(json!({}), Some(finish_reason(stop)), out);
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if self.include_usage {
            self.chunk(json!([]), openai_usage(&self.usage), out);
        }
        write_event(out, None, "[DONE]");
    }

    fn fail(&mut self, error: &UpstreamDetail, out: &mut Vec<u8>) {
        let body = error_body(Dialect::OpenAI, &error.error_type, &error.message);
        write_event(out, None, &body.to_string());
    }
}
