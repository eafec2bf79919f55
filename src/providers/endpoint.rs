//! Which of a provider's APIs one upstream call goes to, and how its 2xx
//! answer is accounted. The chat APIs are the common case and keep their
//! URL parsed once (`Upstreams`); the other endpoints are joined to the
//! provider's base URL per call.

use std::sync::Arc;

use reqwest::Method;

use super::{anthropic, openai};
use crate::domain::{Failure, ProviderKind, Usage};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// Anthropic's Messages or OpenAI's Chat Completions.
    Chat,
    /// Anthropic's `POST /v1/messages/count_tokens`: free, but rate-limited
    /// per key like any other call.
    CountTokens,
    /// OpenAI's `POST /v1/embeddings`, priced per input token.
    Embeddings,
    /// OpenAI's `POST /v1/responses`, priced like chat.
    Responses,
    /// A path keygate does not read (a stored response, a batch, a file):
    /// method, path and query passed as they are, the answer passed whole
    /// and not accounted (what it holds was paid for when it was made).
    Resource { method: Method, path: Arc<str> },
}

impl Endpoint {
    pub fn method(&self) -> Method {
        match self {
            Endpoint::Resource { method, .. } => method.clone(),
            _ => Method::POST,
        }
    }

    /// The path (and query) under the provider's base URL.
    pub fn path(&self, provider: ProviderKind) -> &str {
        match self {
            Endpoint::Chat => match provider {
                ProviderKind::Anthropic => anthropic::MESSAGES_PATH,
                _ => openai::CHAT_PATH,
            },
            Endpoint::CountTokens => anthropic::COUNT_TOKENS_PATH,
            Endpoint::Embeddings => openai::EMBEDDINGS_PATH,
            Endpoint::Responses => openai::RESPONSES_PATH,
            Endpoint::Resource { path, .. } => path,
        }
    }

    /// Whether keygate writes the body as JSON (a resource call keeps the
    /// client's own content type: a file upload is multipart).
    pub fn sends_json(&self) -> bool {
        !matches!(self, Endpoint::Resource { .. })
    }
}

/// The model and usage of a 2xx body of `endpoint`, read without building
/// the rest; an error if the body is not such an answer, so a garbled 2xx
/// counts against its attempt. `requested` names the model for answers
/// that do not (token counts).
pub fn answer_usage(
    provider: ProviderKind,
    endpoint: &Endpoint,
    requested: Option<&str>,
    body: &[u8],
) -> Result<(String, Usage), Failure> {
    let requested = || requested.unwrap_or_default().to_string();
    match (endpoint, provider) {
        (Endpoint::Chat, ProviderKind::Anthropic) => anthropic::usage_from_bytes(body),
        (Endpoint::Chat | Endpoint::Embeddings, _) => openai::usage_from_bytes(body),
        (Endpoint::CountTokens, _) => {
            anthropic::check_token_count(body)?;
            Ok((requested(), Usage::default()))
        }
        (Endpoint::Responses, _) => openai::responses_usage(body),
        (Endpoint::Resource { .. }, _) => Ok((String::new(), Usage::default())),
    }
}
