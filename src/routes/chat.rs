//! `POST /api/chat`: the Node backend's chat route. Validates the body,
//! converts it to the provider's API, hands it to the gateway and answers in
//! keygate's own shape with usage, cost and the key used. Content blocks are
//! kept as the client's bytes (`RawValue`) and written upstream as they
//! came; the limits of `crate::limits` are checked before the body is parsed.

use std::borrow::Cow;
use std::fmt;

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::app_state::AppState;
use crate::domain::{ChatContent, ChatMessage, ChatParts, ChatRequest, ChatRole, ProviderKind};
use crate::error::ApiError;
use crate::extract::{parse_json, read_bytes};
use crate::fields;
use crate::gateway::render::chat_answer::ChatAnswer;
use crate::gateway::render::chat_events::ChatEvents;
use crate::limits::check_shape;
use crate::observe::RequestLog;
use crate::providers::UpstreamCall;

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

/// A string, or content blocks kept as the client wrote them. Hand-written
/// rather than `#[serde(untagged)]`: an untagged enum first copies its
/// input into a tree of its own, which is what this type avoids.
#[derive(Debug)]
enum Content {
    Text(String),
    Blocks(Vec<Box<RawValue>>),
}

impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ContentVisitor)
    }
}

struct ContentVisitor;

impl<'de> Visitor<'de> for ContentVisitor {
    type Value = Content;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string or an array of content blocks")
    }

    fn visit_str<E>(self, text: &str) -> Result<Content, E> {
        Ok(Content::Text(text.to_string()))
    }

    fn visit_string<E>(self, text: String) -> Result<Content, E> {
        Ok(Content::Text(text))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Content, A::Error> {
        let mut blocks = Vec::new();
        while let Some(block) = seq.next_element::<Box<RawValue>>()? {
            if !block.get().starts_with('{') {
                return Err(de::Error::custom("a content block must be a JSON object"));
            }
            blocks.push(block);
        }
        Ok(Content::Blocks(blocks))
    }
}

impl Content {
    /// The text of a system message (its text blocks, joined).
    fn text(&self) -> String {
        #[derive(Deserialize)]
        struct TextOf<'a> {
            #[serde(borrow)]
            text: Option<Cow<'a, str>>,
        }
        match self {
            Content::Text(text) => text.clone(),
            Content::Blocks(blocks) => blocks
                .iter()
                .filter_map(|block| serde_json::from_str::<TextOf>(block.get()).ok()?.text)
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    fn into_content(self) -> ChatContent {
        match self {
            Content::Text(text) => ChatContent::Text(text),
            Content::Blocks(blocks) => ChatContent::Blocks(blocks),
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
        if provider.is_search() {
            return Err(ApiError::bad_request(format!(
                "provider: {provider} is a web-search provider; use /api/search"
            )));
        }
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
                content: message.content.into_content(),
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

/// What the handler keeps of a converted request once its upstream body is
/// written: the conversation itself is dropped before the upstream call.
struct Converted {
    provider: ProviderKind,
    call: UpstreamCall,
    model: String,
    stream: bool,
}

/// Reads, checks and converts the body, a large one in its turn.
async fn convert(state: &AppState, body: Body) -> Result<Converted, ApiError> {
    let bytes = read_bytes(body, state.body_limit).await?;
    let _turn = state.conversions.admit(bytes.len()).await?;
    check_shape(&bytes)?;
    let body: ChatBody = parse_json(&bytes)?;
    // The blocks are copies now; the client's bytes can go.
    drop(bytes);
    let (provider, request) = body.into_request()?;
    let call = UpstreamCall::chat(provider, &request);
    Ok(Converted {
        provider,
        call,
        model: request.model,
        stream: request.stream,
    })
}

pub async fn chat(
    State(state): State<AppState>,
    log: RequestLog,
    body: Body,
) -> Result<Response, ApiError> {
    let Converted {
        provider,
        call,
        model,
        stream,
    } = convert(&state, body).await?;
    let prices = state.prices.table();
    if stream {
        return state
            .gateway
            .stream(&call, &log, |key, attempts| {
                ChatEvents::new(prices, provider, model, key.clone(), attempts)
            })
            .await;
    }
    let reply = state.gateway.chat(&call, &log).await?;
    Ok(ChatAnswer::respond(&prices, provider, &model, reply))
}
