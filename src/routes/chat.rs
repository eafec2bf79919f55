//! `POST /api/chat`: the Node backend's chat route. Validates the body,
//! converts it to the provider's API, hands it to the gateway and answers in
//! keygate's own shape with usage, cost and the key used.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use crate::app_state::AppState;
use crate::domain::{ChatMessage, ChatParts, ChatRequest, ChatRole, ProviderKind};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::gateway::render::chat_answer::ChatAnswer;
use crate::gateway::render::chat_events::ChatEvents;
use crate::providers::UpstreamCall;
use crate::routes::fields;

#[derive(Debug, Deserialize)]
#[serde(expecting = "a JSON object with a \"messages\" array")]
pub struct ChatBody {
    messages: Vec<BodyMessage>,
    provider: Option<String>,
    model: Option<String>,
    system: Option<String>,
    // Read as JSON values and checked by `routes::fields`, so each gets the
    // same 400 here as on the SDK routes.
    max_tokens: Option<Value>,
    temperature: Option<Value>,
    top_p: Option<Value>,
    stop_sequences: Option<Value>,
    stream: Option<Value>,
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
        if self.messages.is_empty() {
            return Err(ApiError::bad_request("messages: must not be empty"));
        }
        let mut system: Vec<String> = self.system.into_iter().collect();
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
        let checked = |value: Option<Value>| value.filter(|v| !v.is_null());
        let request = ChatRequest::assemble(ChatParts {
            model,
            max_tokens: checked(self.max_tokens)
                .map(|v| fields::max_tokens("max_tokens", &v))
                .transpose()?,
            system,
            messages,
            temperature: checked(self.temperature)
                .map(|v| fields::number("temperature", &v))
                .transpose()?,
            top_p: checked(self.top_p)
                .map(|v| fields::number("top_p", &v))
                .transpose()?,
            stop_sequences: checked(self.stop_sequences)
                .map(|v| fields::stop_sequences(&v))
                .transpose()?,
            stream: checked(self.stream)
                .map(|v| fields::stream(&v))
                .transpose()?
                .unwrap_or(false),
        })
        .map_err(ApiError::bad_request)?;
        Ok((provider, request))
    }
}

pub async fn chat(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ChatBody>,
) -> Result<Response, ApiError> {
    let (provider, request) = body.into_request()?;
    let call = UpstreamCall::chat(provider, &request);
    if request.stream {
        let model = request.model;
        return state
            .gateway
            .stream(&call, |key, attempts| {
                ChatEvents::new(provider, model, key.clone(), attempts)
            })
            .await;
    }
    let reply = state.gateway.chat(&call).await?;
    Ok(ChatAnswer::respond(provider, &request.model, reply))
}
