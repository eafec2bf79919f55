//! `POST /api/chat`: the Node backend's chat route. Validates the body,
//! converts it to the provider's API, runs it through the failover loop and
//! answers in the gateway's own shape with usage, cost and the key used.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::gateway::{ChatMessage, ChatRequest, ChatRole, with_failover};
use crate::keypool::RequestTracker;
use crate::pricing;
use crate::providers::ProviderKind;
use crate::state::AppState;

const DEFAULT_MAX_TOKENS: u32 = 1024;

#[derive(Debug, Deserialize)]
#[serde(expecting = "a JSON object with a \"messages\" array")]
pub struct ChatBody {
    messages: Vec<BodyMessage>,
    provider: Option<String>,
    model: Option<String>,
    max_tokens: Option<u32>,
    system: Option<String>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    stop_sequences: Option<Vec<String>>,
    stream: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct BodyMessage {
    role: BodyRole,
    content: Content,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum BodyRole {
    User,
    Assistant,
    System,
}

#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "a string or an array of content blocks")]
enum Content {
    Text(String),
    Blocks(Vec<serde_json::Map<String, Value>>),
}

impl Content {
    /// The text of a system message (its text blocks, joined).
    fn text(&self) -> String {
        match self {
            Content::Text(text) => text.clone(),
            Content::Blocks(blocks) => blocks
                .iter()
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    fn into_value(self) -> Value {
        match self {
            Content::Text(text) => Value::String(text),
            Content::Blocks(blocks) => {
                Value::Array(blocks.into_iter().map(Value::Object).collect())
            }
        }
    }
}

impl ChatBody {
    /// Checks what routing and accounting need; the upstream judges the rest.
    pub fn into_request(self) -> Result<(ProviderKind, ChatRequest), ApiError> {
        let provider: ProviderKind = match self.provider.as_deref() {
            None => ProviderKind::Anthropic,
            Some(name) => name
                .parse()
                .map_err(|e| ApiError::bad_request(format!("provider: {e}")))?,
        };
        if self.stream == Some(true) {
            return Err(ApiError::bad_request(
                "stream: streaming is not supported yet; send \"stream\": false or leave it out",
            ));
        }
        let model = match self.model {
            None => provider.default_model().to_string(),
            Some(model) if model.trim().is_empty() => {
                return Err(ApiError::bad_request("model: must not be empty"));
            }
            Some(model) => model,
        };
        let max_tokens = self.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
        if max_tokens == 0 {
            return Err(ApiError::bad_request("max_tokens: must be at least 1"));
        }
        if self.messages.is_empty() {
            return Err(ApiError::bad_request("messages: must not be empty"));
        }
        // Anthropic has no system role: system messages are lifted into `system`.
        let mut system: Vec<String> = self.system.into_iter().filter(|s| !s.is_empty()).collect();
        let mut messages = Vec::with_capacity(self.messages.len());
        for message in self.messages {
            let role = match message.role {
                BodyRole::System => {
                    system.push(message.content.text());
                    continue;
                }
                BodyRole::User => ChatRole::User,
                BodyRole::Assistant => ChatRole::Assistant,
            };
            messages.push(ChatMessage {
                role,
                content: message.content.into_value(),
            });
        }
        if messages.is_empty() {
            return Err(ApiError::bad_request(
                "messages: must contain at least one user or assistant message",
            ));
        }
        let request = ChatRequest {
            model,
            max_tokens,
            system: (!system.is_empty()).then(|| system.join("\n\n")),
            messages,
            temperature: self.temperature,
            top_p: self.top_p,
            stop_sequences: self.stop_sequences,
        };
        Ok((provider, request))
    }
}

pub async fn chat(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ChatBody>,
) -> Result<Response, ApiError> {
    let (provider, request) = body.into_request()?;
    let pool = state
        .pools
        .get(provider)
        .ok_or_else(|| ApiError::bad_request(format!("provider: {provider} is not configured")))?;
    let upstream_body = state.upstreams.chat_body(provider, &request);
    let mut tracker = RequestTracker::start(pool);
    let result = with_failover(pool, state.retry, &mut tracker, |key| {
        state.upstreams.chat(provider, key, upstream_body.clone())
    })
    .await;
    tracker.finish(result.is_ok());
    let answered = result?;

    let reply = answered.value;
    let cost = pricing::cost_of(provider, &reply.model, &reply.usage)
        .or_else(|| pricing::cost_of(provider, &request.model, &reply.usage));
    let mut usage = serde_json::to_value(reply.usage).unwrap_or_default();
    usage["total_tokens"] = json!(reply.usage.total_tokens());
    let body = json!({
        "id": reply.id,
        "provider": provider.as_str(),
        "model": reply.model,
        "content": reply.content,
        "stop_reason": reply.stop_reason,
        "usage": usage,
        "cost": cost,
        "key": answered.key.id,
        "attempts": answered.attempts,
    });
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_static("x-keygate-attempts"),
        HeaderValue::from(answered.attempts),
    );
    if let Ok(key_id) = HeaderValue::from_str(answered.key.id.as_str()) {
        headers.insert(HeaderName::from_static("x-keygate-key"), key_id);
    }
    Ok((headers, Json(body)).into_response())
}
