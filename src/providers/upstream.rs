//! `Upstreams`: the shared HTTP client and each provider's base URL, and the
//! one place that dispatches to a provider's module: how to authenticate,
//! where to send, how to read errors, replies and stream frames. Adding a
//! provider means adding arms here, not across the tree.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use crate::scrub::Scrubber;

use super::endpoint::{Endpoint, answer_usage};
use super::search::SearchClient;
use super::{anthropic, openai};
use crate::config::Config;
use crate::domain::{
    ChatReply, ChatRequest, Failure, Frame, KeyId, KeyLease, ProviderKind, RateLimits, Reading,
    UpstreamDetail, Usage,
};

/// One request to send upstream, the same for every attempt.
#[derive(Clone)]
pub struct UpstreamCall {
    pub provider: ProviderKind,
    /// Which of the provider's APIs; decides the URL, the method and how a
    /// 2xx answer is accounted.
    pub endpoint: Endpoint,
    pub body: Bytes,
    /// Client headers to forward (e.g. `anthropic-version`, `anthropic-beta`).
    pub headers: HeaderMap,
    /// The requested model: cooldowns are scoped to it where the provider
    /// limits per model.
    pub model: Option<std::sync::Arc<str>>,
    /// The client's session header (`affinity::session_header`), kept for
    /// affinity; never sent upstream.
    pub session_header: Option<axum::http::HeaderValue>,
    /// Where the body's session sources are, when the route found them in
    /// its own parse (else affinity reads the body again).
    pub session_parts: Option<crate::affinity::SessionParts>,
    /// The resource the call names, when only one key can see it.
    pub bound: Option<BoundResource>,
}

impl UpstreamCall {
    /// A call on a path keygate passes through whole (`Endpoint::Resource`),
    /// held to `bound`'s key when it names a resource.
    pub fn resource(
        provider: ProviderKind,
        method: reqwest::Method,
        path: String,
        body: Bytes,
        headers: HeaderMap,
        bound: Option<BoundResource>,
    ) -> Self {
        Self {
            provider,
            endpoint: Endpoint::Resource {
                method,
                path: path.into(),
            },
            body,
            headers,
            model: None,
            session_header: None,
            session_parts: None,
            bound,
        }
    }
}

/// A resource (a stored response, a batch, a file) and the one key that
/// can see it: the key that created it.
#[derive(Clone, Debug)]
pub struct BoundResource {
    pub id: Arc<str>,
    pub key: KeyId,
}

impl UpstreamCall {
    /// The call for a gateway chat request, in the provider's own API; the
    /// body is serialised once and reused for every attempt.
    pub fn chat(provider: ProviderKind, request: &ChatRequest) -> Self {
        // Search providers never reach here: the chat routes refuse them.
        let body = match provider {
            ProviderKind::Anthropic => anthropic::request_body(request),
            _ => openai::request_body(request),
        };
        Self {
            provider,
            endpoint: Endpoint::Chat,
            body,
            headers: HeaderMap::new(),
            model: Some(request.model.as_str().into()),
            session_header: None,
            session_parts: None,
            bound: None,
        }
    }
}

/// A provider's endpoints, parsed once: reqwest would otherwise parse the
/// URL string again on every request.
struct Endpoints {
    provider: ProviderKind,
    /// The base URL as configured, without a trailing slash.
    base: String,
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

/// Most of an error body that is read: past it, only 200 characters of the
/// message are kept anyway, and a hostile upstream could send gigabytes.
pub const ERROR_BODY_LIMIT: usize = 64 * 1024;

pub struct Upstreams {
    http: reqwest::Client,
    endpoints: Vec<Endpoints>,
    /// Knows every pool's keys: whatever an upstream says is scrubbed here,
    /// before anyone (client, log, pool history, database) sees it.
    scrubber: Arc<Scrubber>,
    /// Largest successful body read whole (`MAX_UPSTREAM_BODY_BYTES`).
    max_body: usize,
    /// The web-search endpoints, on the same HTTP client.
    search: SearchClient,
}

impl Upstreams {
    pub fn new(config: &Config, scrubber: Arc<Scrubber>) -> Result<Self, UpstreamsError> {
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
            .filter(|p| !p.kind.is_search())
            .map(|p| {
                let path = match p.kind {
                    ProviderKind::Anthropic => anthropic::MESSAGES_PATH,
                    _ => openai::CHAT_PATH,
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
                    base: p.base_url.trim_end_matches('/').to_string(),
                    chat: parse(path)?,
                    models: parse("/v1/models")?,
                })
            })
            .collect::<Result<_, UpstreamsError>>()?;
        Ok(Self {
            search: SearchClient::new(http.clone(), config)?,
            http,
            endpoints,
            scrubber,
            max_body: config.max_upstream_body,
        })
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
        let endpoints = self.endpoints(call.provider)?;
        let url = match &call.endpoint {
            Endpoint::Chat => endpoints.chat.clone(),
            other => Url::parse(&format!("{}{}", endpoints.base, other.path(call.provider)))
                .map_err(|e| Failure::malformed(&format!("cannot build the upstream URL: {e}")))?,
        };
        let mut headers = call.headers.clone();
        if call.provider == ProviderKind::Anthropic && !headers.contains_key(&ANTHROPIC_VERSION) {
            headers.insert(
                ANTHROPIC_VERSION,
                HeaderValue::from_static(anthropic::API_VERSION),
            );
        }
        if call.endpoint.sends_json() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        headers.insert(auth_header, auth_value);
        let mut request = self
            .http
            .request(call.endpoint.method(), url)
            .headers(headers);
        if !call.body.is_empty() {
            request = request.body(call.body.clone());
        }
        let response = request.send().await.map_err(|e| Failure::network(&e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        Err(self.failure(call.provider, response).await)
    }

    /// A non-2xx answer read (at most `ERROR_BODY_LIMIT` of it) and
    /// classified. Its callers scrub it (the failover loop, key checks), as
    /// they scrub every other failure, so it is not done twice.
    async fn failure(&self, provider: ProviderKind, response: reqwest::Response) -> Failure {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = match read_capped(response, ERROR_BODY_LIMIT).await {
            Ok(Capped::Whole(body) | Capped::Cut(body)) => body,
            Err(failure) => return failure,
        };
        classify(provider, status, &headers, &body)
    }

    /// The scrubber that knows every pool's keys.
    pub fn scrubber(&self) -> &Scrubber {
        &self.scrubber
    }

    /// Reads a whole 2xx body (at most `MAX_UPSTREAM_BODY_BYTES`), keeping
    /// the headers worth passing on.
    pub async fn read_body(
        &self,
        response: reqwest::Response,
    ) -> Result<(HeaderMap, Bytes), Failure> {
        let headers = self.passthrough_headers(response.headers());
        match read_capped(response, self.max_body).await? {
            Capped::Whole(body) => Ok((headers, body)),
            Capped::Cut(_) => Err(Failure::malformed(&format!(
                "the answer is larger than MAX_UPSTREAM_BODY_BYTES ({} bytes)",
                self.max_body
            ))),
        }
    }

    /// The provider headers a client may see: rate-limit state and the
    /// upstream's request id (for reconciling bills), nothing else, and
    /// none that echoes a key.
    pub fn passthrough_headers(&self, upstream: &HeaderMap) -> HeaderMap {
        upstream
            .iter()
            .filter(|(name, value)| {
                let name = name.as_str();
                (name.starts_with("anthropic-ratelimit-")
                    || name.starts_with("x-ratelimit-")
                    || name == "request-id")
                    && !self.scrubber.holds_key(value.as_bytes())
            })
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect()
    }

    /// The web-search endpoints.
    pub fn search(&self) -> &SearchClient {
        &self.search
    }

    /// A key check that also reads what the key has left: a search
    /// provider's (see `SearchClient::probe`); for chat, `probe`.
    pub async fn probe_limits(
        &self,
        provider: ProviderKind,
        secret: &SecretString,
    ) -> Result<RateLimits, Failure> {
        if provider.is_search() {
            return self.search.probe(provider, secret).await;
        }
        self.probe(provider, secret)
            .await
            .map(|()| RateLimits::default())
    }

    /// A cheap authenticated call (`GET /v1/models`) to check that a key
    /// works. `Ok` for a 2xx; the classified failure otherwise.
    pub async fn probe(
        &self,
        provider: ProviderKind,
        secret: &SecretString,
    ) -> Result<(), Failure> {
        if provider.is_search() {
            return self.search.probe(provider, secret).await.map(|_| ());
        }
        let (auth_header, auth_value) = authorization(provider, secret)?;
        let mut request = self
            .http
            .get(self.endpoints(provider)?.models.clone())
            .header(auth_header, auth_value);
        if provider == ProviderKind::Anthropic {
            request = request.header(ANTHROPIC_VERSION, anthropic::API_VERSION);
        }
        let response = request.send().await.map_err(|e| Failure::network(&e))?;
        if response.status().is_success() {
            return Ok(());
        }
        Err(self.failure(provider, response).await)
    }
}

/// A 2xx body read as the gateway's chat reply.
pub fn parse_reply(provider: ProviderKind, body: &[u8]) -> Result<ChatReply, Failure> {
    match provider {
        ProviderKind::Anthropic => anthropic::reply_from_bytes(body),
        _ => openai::reply_from_bytes(body),
    }
}

/// The model and usage of `call`'s 2xx body passed through as it came; an
/// error if it is not such a body.
pub fn reply_usage(call: &UpstreamCall, body: &[u8]) -> Result<(String, Usage), Failure> {
    answer_usage(call.provider, &call.endpoint, call.model.as_deref(), body)
}

/// How to read one stream frame of `call`'s answer.
pub fn frame_reader(call: &UpstreamCall) -> fn(&Frame) -> Reading {
    match (call.provider, &call.endpoint) {
        (ProviderKind::Anthropic, _) => anthropic::read_frame,
        (_, Endpoint::Responses) => openai::read_responses_frame,
        _ => openai::read_frame,
    }
}

/// Maps `provider`'s stop reasons to `/api/chat`'s (Anthropic's) words.
pub fn stop_reason_normalizer(provider: ProviderKind) -> fn(&str) -> String {
    match provider {
        ProviderKind::Anthropic => str::to_string,
        _ => openai::stop_reason,
    }
}

enum Capped {
    Whole(Bytes),
    /// The first `limit` bytes; the rest was not read.
    Cut(Bytes),
}

/// Reads a body chunk by chunk, stopping at `limit` bytes.
async fn read_capped(mut response: reqwest::Response, limit: usize) -> Result<Capped, Failure> {
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| Failure::network(&e))? {
        let room = limit - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok(Capped::Cut(body.freeze()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Capped::Whole(body.freeze()))
}

fn classify(provider: ProviderKind, status: u16, headers: &HeaderMap, body: &[u8]) -> Failure {
    match provider {
        ProviderKind::Anthropic => anthropic::classify(status, headers, body),
        _ => openai::classify(status, headers, body),
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
        _ => (
            AUTHORIZATION,
            header_value(&format!("Bearer {}", secret.expose_secret()))?,
        ),
    })
}

/// `text` (holding a key) as a header value marked sensitive, so no debug
/// output shows it.
pub(in crate::providers) fn header_value(text: &str) -> Result<HeaderValue, Failure> {
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
