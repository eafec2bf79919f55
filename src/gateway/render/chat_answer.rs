//! The non-streamed `/api/chat` answer, the shape the Node backend's
//! frontend reads: the reply, its usage and cost, and the key that served
//! it (its id, never the key).

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::domain::{ChatReply, KeyId, ProviderKind};
use crate::gateway::Proxied;
use crate::pricing::{BilledUsage, Cost, PriceTable};

#[derive(Debug, Serialize)]
pub struct ChatAnswer {
    pub id: String,
    pub provider: ProviderKind,
    /// The model that answered, as the upstream named it.
    pub model: String,
    pub content: String,
    pub stop_reason: Option<String>,
    pub usage: BilledUsage,
    /// `null` for a model keygate has no price for.
    pub cost: Option<Cost>,
    pub key: KeyId,
    pub attempts: u32,
}

impl ChatAnswer {
    pub fn new(
        prices: &PriceTable,
        provider: ProviderKind,
        requested_model: &str,
        reply: ChatReply,
        key: KeyId,
        attempts: u32,
    ) -> Self {
        let usage = BilledUsage::new(prices, provider, &reply.model, requested_model, reply.usage);
        Self {
            id: reply.id,
            provider,
            model: reply.model,
            content: reply.content,
            stop_reason: reply.stop_reason,
            cost: usage.cost,
            usage,
            key,
            attempts,
        }
    }

    /// The answer to `reply`, with the gateway's headers.
    pub fn respond(
        prices: &PriceTable,
        provider: ProviderKind,
        requested_model: &str,
        reply: Proxied<ChatReply>,
    ) -> Response {
        let Proxied {
            value,
            headers,
            key,
            attempts,
        } = reply;
        let answer = Self::new(prices, provider, requested_model, value, key, attempts);
        (headers, Json(answer)).into_response()
    }
}
