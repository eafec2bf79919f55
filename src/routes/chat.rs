//! `POST /api/chat`: the Node backend's chat route. Validates the body,
//! converts it to the provider's API, runs it through the failover loop and
//! answers in the gateway's own shape with usage, cost and the key used.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::gateway::{ChatMessage, ChatRequest, ChatRole};
use crate::pricing;
use crate::providers::{ProviderKind, UpstreamCall, parse_reply, read_body};
use crate::render::chat_events::ChatEvents;
use crate::render::gateway_headers;
use crate::routes::proxy;
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
            stream: self.stream.unwrap_or(false),
        };
        Ok((provider, request))
    }
}

pub async fn chat(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ChatBody>,
) -> Result<Response, ApiError> {
    let (provider, request) = body.into_request()?;
    let call = UpstreamCall {
        provider,
        body: state.upstreams.chat_body(provider, &request),
        headers: HeaderMap::new(),
        model: Some(request.model.as_str().into()),
    };
    if request.stream {
        return chat_stream(&state, call, request.model).await;
    }
    let (answered, tracker) = proxy::run(&state, &call, |response| async move {
        let (headers, body) = read_body(response).await?;
        Ok((headers, parse_reply(provider, &body)?))
    })
    .await?;
    tracker.finish(true);
    let (upstream_headers, reply) = answered.value;
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
    let headers = gateway_headers(upstream_headers, &answered.key, answered.attempts);
    Ok((headers, Json(body)).into_response())
}

async fn chat_stream(
    state: &AppState,
    call: UpstreamCall,
    model: String,
) -> Result<Response, ApiError> {
    let provider = call.provider;
    proxy::stream_response(state, &call, |key, attempts| {
        ChatEvents::new(provider, model, key.id.to_string(), attempts)
    })
    .await
}
