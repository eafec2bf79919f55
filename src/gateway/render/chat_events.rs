//! `/api/chat` streaming events, one `data: <json>` per event:
//! `start` (id, provider, model, key), `delta` per text piece, then `done`
//! (stop reason, usage, cost, attempts) or, after a failure, `error`, never
//! a clean `done`.

use std::sync::Arc;

use serde::Serialize;

use crate::domain::{Frame, FrameKind, KeyId, ProviderKind, Reading, UpstreamDetail, Usage};
use crate::gateway::relay::{Render, write_event};
use crate::pricing::{BilledUsage, Cost, PriceTable};
use crate::providers::stop_reason_normalizer;

/// One event of an `/api/chat` stream, as the client reads it.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ChatEvent<'a> {
    Start {
        id: Option<&'a str>,
        provider: ProviderKind,
        model: &'a str,
        key: &'a KeyId,
    },
    Delta {
        text: &'a str,
    },
    Done {
        stop_reason: Option<&'a str>,
        usage: BilledUsage,
        cost: Option<Cost>,
        attempts: u32,
    },
    Error {
        error: ErrorDetail<'a>,
    },
}

#[derive(Debug, Serialize)]
pub struct ErrorDetail<'a> {
    #[serde(rename = "type")]
    pub error_type: &'a str,
    pub message: &'a str,
}

impl ChatEvent<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        // Serialising borrowed strings and numbers cannot fail.
        let data = serde_json::to_string(self).unwrap_or_default();
        write_event(out, None, &data);
    }
}

pub struct ChatEvents {
    /// The prices in force when the request began.
    prices: Arc<PriceTable>,
    provider: ProviderKind,
    key: KeyId,
    attempts: u32,
    id: Option<String>,
    requested_model: String,
    /// The model that answered, once the upstream names it.
    model: String,
    usage: Usage,
    stop_reason: Option<String>,
    started: bool,
    /// Maps the provider's stop reasons into `/api/chat`'s vocabulary.
    normalize_stop: fn(&str) -> String,
}

impl ChatEvents {
    pub fn new(
        prices: Arc<PriceTable>,
        provider: ProviderKind,
        requested_model: String,
        key: KeyId,
        attempts: u32,
    ) -> Self {
        Self {
            prices,
            provider,
            key,
            attempts,
            id: None,
            model: requested_model.clone(),
            requested_model,
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
        ChatEvent::Start {
            id: self.id.as_deref(),
            provider: self.provider,
            model: &self.model,
            key: &self.key,
        }
        .write(out);
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
            ChatEvent::Delta { text }.write(out);
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        self.start(out);
        let usage = BilledUsage::new(
            &self.prices,
            self.provider,
            &self.model,
            &self.requested_model,
            self.usage,
        );
        ChatEvent::Done {
            stop_reason: self.stop_reason.as_deref(),
            cost: usage.cost,
            usage,
            attempts: self.attempts,
        }
        .write(out);
    }

    fn fail(&mut self, error: &UpstreamDetail, out: &mut Vec<u8>) {
        ChatEvent::Error {
            error: ErrorDetail {
                error_type: &error.error_type,
                message: &error.message,
            },
        }
        .write(out);
    }
}
