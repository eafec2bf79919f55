//! `Upstreams`: the shared HTTP client and each provider's base URL, and the
//! one place that dispatches to a provider's module: how to authenticate,
//! where to send, how to read errors, replies and stream frames. Adding a
//! provider means adding arms here, not across the tree.

use std::time::Duration;

use bytes::Bytes;
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use super::{anthropic, openai};
use crate::config::Config;
use crate::domain::{
    ChatReply, ChatRequest, Failure, Frame, KeyLease, ProviderKind, Reading, UpstreamDetail,
};

/// One request to send upstream, the same for every attempt.
#[derive(Clone)]
pub struct UpstreamCall {
    pub provider: ProviderKind,
    pub body: Bytes,
    /// Client headers to forward (e.g. `anthropic-version`, `anthropic-beta`).
    pub headers: HeaderMap,
    /// The requested model: cooldowns are scoped to it where the provider
    /// limits per model.
    pub model: Option<std::sync::Arc<str>>,
}

impl UpstreamCall {
    /// The call for a gateway chat request, in the provider's own API; the
    /// body is serialised once and reused for every attempt.
    pub fn chat(provider: ProviderKind, request: &ChatRequest) -> Self {
        let body = match provider {
            ProviderKind::Anthropic => anthropic::request_body(request),
            ProviderKind::OpenAI => openai::request_body(request),
        };
        Self {
            provider,
            body,
            headers: HeaderMap::new(),
            model: Some(request.model.as_str().into()),
        }
    }
}

/// A provider's endpoints, parsed once: reqwest would otherwise parse the
/// URL string again on every request.
struct Endpoints {
    provider: ProviderKind,
    chat: Url,
    models: Url,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamsError {
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("invalid {variable}: {reason}")]
    BaseUrl {
        variable: &'static str,
        reason: String,
    },
}

const ANTHROPIC_VERSION: HeaderName = HeaderName::from_static("anthropic-version");
const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

pub struct Upstreams {
    http: reqwest::Client,
    endpoints: Vec<Endpoints>,
}

impl Upstreams {
    pub fn new(config: &Config) -> Result<Self, UpstreamsError> {
        let http = reqwest::Client::builder()
            // No total timeout: it would cut long answers and streams; the
            // failover loop bounds each attempt, the relay each stream gap.
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            // A redirect would re-send the request, and reqwest keeps
            // custom headers such as `x-api-key` across hosts: a provider
            // key must never follow a redirect anywhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("keygate/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let endpoints = config
            .providers
            .iter()
            .map(|p| {
                let path = match p.kind {
                    ProviderKind::Anthropic => anthropic::MESSAGES_PATH,
                    ProviderKind::OpenAI => openai::CHAT_PATH,
                };
                let parse = |suffix: &str| {
                    Url::parse(&format!("{}{suffix}", p.base_url)).map_err(|e| {
                        UpstreamsError::BaseUrl {
                            variable: p.kind.env().base_url,
                            reason: e.to_string(),
                        }
                    })
                };
                Ok(Endpoints {
                    provider: p.kind,
                    chat: parse(path)?,
                    models: parse("/v1/models")?,
                })
            })
            .collect::<Result<_, UpstreamsError>>()?;
        Ok(Self { http, endpoints })
    }

    fn endpoints(&self, provider: ProviderKind) -> Result<&Endpoints, Failure> {
        self.endpoints
            .iter()
            .find(|e| e.provider == provider)
            .ok_or_else(|| Failure::malformed("the provider is not configured"))
    }

    /// Sends `call` with `key`. A 2xx comes back as the response (body not
    /// yet read); anything else is read and classified.
    pub async fn send(
        &self,
        call: &UpstreamCall,
        key: &KeyLease,
    ) -> Result<reqwest::Response, Failure> {
        let (auth_header, auth_value) = authorization(call.provider, &key.secret)?;
        let url = self.endpoints(call.provider)?.chat.clone();
        let mut headers = call.headers.clone();
        if call.provider == ProviderKind::Anthropic && !headers.contains_key(&ANTHROPIC_VERSION) {
            headers.insert(
                ANTHROPIC_VERSION,
                HeaderValue::from_static(anthropic::API_VERSION),
            );
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(auth_header, auth_value);
        let response = self
            .http
            .post(url)
            .headers(headers)
            .body(call.body.clone())
            .send()
            .await
            .map_err(|e| Failure::network(&e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| Failure::network(&e))?;
        Err(classify(call.provider, status.as_u16(), &headers, &body))
    }

    /// A cheap authenticated call (`GET /v1/models`) to check that a key
    /// works. `Ok` for a 2xx; the classified failure otherwise.
    pub async fn probe(
        &self,
        provider: ProviderKind,
        secret: &SecretString,
    ) -> Result<(), Failure> {
        let (auth_header, auth_value) = authorization(provider, secret)?;
        let mut request = self
            .http
            .get(self.endpoints(provider)?.models.clone())
            .header(auth_header, auth_value);
        if provider == ProviderKind::Anthropic {
            request = request.header(ANTHROPIC_VERSION, anthropic::API_VERSION);
        }
        let response = request.send().await.map_err(|e| Failure::network(&e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| Failure::network(&e))?;
        if status.is_success() {
            return Ok(());
        }
        Err(classify(provider, status.as_u16(), &headers, &body))
    }
}

/// A 2xx body read as the gateway's chat reply.
pub fn parse_reply(provider: ProviderKind, body: &[u8]) -> Result<ChatReply, Failure> {
    match provider {
        ProviderKind::Anthropic => anthropic::reply_from_bytes(body),
        ProviderKind::OpenAI => openai::reply_from_bytes(body),
    }
}

/// How to read one stream frame of `provider`.
pub fn frame_reader(provider: ProviderKind) -> fn(&Frame) -> Reading {
    match provider {
        ProviderKind::Anthropic => anthropic::read_frame,
        ProviderKind::OpenAI => openai::read_frame,
    }
}

/// Maps `provider`'s stop reasons to `/api/chat`'s (Anthropic's) words.
pub fn stop_reason_normalizer(provider: ProviderKind) -> fn(&str) -> String {
    match provider {
        ProviderKind::Anthropic => str::to_string,
        ProviderKind::OpenAI => openai::stop_reason,
    }
}

/// Reads a whole 2xx body, keeping the headers worth passing on.
pub async fn read_body(response: reqwest::Response) -> Result<(HeaderMap, Bytes), Failure> {
    let headers = passthrough_headers(response.headers());
    let body = response.bytes().await.map_err(|e| Failure::network(&e))?;
    Ok((headers, body))
}

/// The provider headers a client may see: rate-limit state and the
/// upstream's request id (for reconciling bills), nothing else.
pub fn passthrough_headers(upstream: &HeaderMap) -> HeaderMap {
    upstream
        .iter()
        .filter(|(name, _)| {
            let name = name.as_str();
            name.starts_with("anthropic-ratelimit-")
                || name.starts_with("x-ratelimit-")
                || name == "request-id"
        })
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

fn classify(provider: ProviderKind, status: u16, headers: &HeaderMap, body: &[u8]) -> Failure {
    match provider {
        ProviderKind::Anthropic => anthropic::classify(status, headers, body),
        ProviderKind::OpenAI => openai::classify(status, headers, body),
    }
}

/// The header that carries a provider key, its value marked sensitive so
/// no debug output ever shows it.
fn authorization(
    provider: ProviderKind,
    secret: &SecretString,
) -> Result<(HeaderName, HeaderValue), Failure> {
    Ok(match provider {
        ProviderKind::Anthropic => (X_API_KEY, header_value(secret.expose_secret())?),
        ProviderKind::OpenAI => (
            AUTHORIZATION,
            header_value(&format!("Bearer {}", secret.expose_secret()))?,
        ),
    })
}

fn header_value(text: &str) -> Result<HeaderValue, Failure> {
    let mut value = HeaderValue::from_str(text).map_err(|_| {
        Failure::KeyRejected(UpstreamDetail {
            status: None,
            error_type: "invalid_key".into(),
            message: "the stored key contains characters an HTTP header cannot carry".into(),
        })
    })?;
    value.set_sensitive(true);
    Ok(value)
}
