//! The honest baseline: the least any gateway must do per request, written
//! as lean as axum + reqwest allow, so that whatever keygate costs beyond it
//! is the price of keygate's own features and not of the plumbing. Per
//! request it
//!
//! - reads the body into memory and parses just enough JSON to know the
//!   model and whether the call streams;
//! - checks the client's key (`x-api-key`, else `Authorization: Bearer`)
//!   against the gateway keys;
//! - picks an upstream key round-robin from an atomic counter;
//! - sends the original bytes to a URL parsed once at start, through one
//!   shared client (TCP_NODELAY, no proxy, no redirects);
//! - streams the answer back unchanged: status, content type, body.
//!
//! It keeps no statistics, no logs and no state beyond the counters. The
//! bench runs it on a runtime with as many workers as keygate gets under
//! the same CPU pinning, so neither side wins by having more threads.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::ListenerExt;
use serde::Deserialize;
use tokio::net::TcpListener;

/// The largest request body read; axum's default body limit.
const BODY_LIMIT: usize = 2 * 1024 * 1024;

const ANTHROPIC_VERSION: HeaderName = HeaderName::from_static("anthropic-version");
const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
/// Sent upstream when the client names no Anthropic API version.
const DEFAULT_ANTHROPIC_VERSION: &str = "2023-06-01";

/// What the baseline serves and with which keys.
#[derive(Clone, Debug)]
pub struct BaselineConfig {
    /// Base URL of the upstream, e.g. `http://127.0.0.1:4000`.
    pub upstream: String,
    /// The keys clients must present (the bench's `GATEWAY_API_KEYS`).
    pub client_keys: Vec<String>,
    /// Upstream keys for `/v1/messages`, used round-robin.
    pub anthropic_keys: Vec<String>,
    /// Upstream keys for `/v1/chat/completions`, used round-robin.
    pub openai_keys: Vec<String>,
}

/// One upstream route: its URL and credentials, prepared once.
struct Route {
    url: reqwest::Url,
    /// The header each key travels in (`x-api-key` or `authorization`).
    key_header: HeaderName,
    /// Ready header values (`sk-…` or `Bearer sk-…`), so a request only
    /// clones one (a reference count, no allocation).
    keys: Vec<HeaderValue>,
    next: AtomicUsize,
    anthropic: bool,
}

impl Route {
    fn new(
        base: &str,
        path: &str,
        key_header: HeaderName,
        prefix: &str,
        keys: &[String],
        anthropic: bool,
    ) -> io::Result<Self> {
        let url = reqwest::Url::parse(&format!("{}{path}", base.trim_end_matches('/')))
            .map_err(io::Error::other)?;
        let keys = keys
            .iter()
            .map(|key| HeaderValue::try_from(format!("{prefix}{key}")))
            .collect::<Result<Vec<_>, _>>()
            .map_err(io::Error::other)?;
        if keys.is_empty() {
            return Err(io::Error::other(format!("no upstream keys for {path}")));
        }
        Ok(Self {
            url,
            key_header,
            keys,
            next: AtomicUsize::new(0),
            anthropic,
        })
    }

    fn next_key(&self) -> &HeaderValue {
        // Relaxed: the counter only spreads calls; nothing is ordered by it.
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        &self.keys[turn % self.keys.len()]
    }
}

struct Baseline {
    client: reqwest::Client,
    client_keys: Vec<Box<[u8]>>,
    anthropic: Route,
    openai: Route,
}

/// The two fields a gateway needs before it can route and account.
#[derive(Deserialize)]
struct Peek {
    model: String,
    #[expect(
        dead_code,
        reason = "parsed because every gateway must know it; the baseline streams either way"
    )]
    stream: Option<bool>,
}

/// Serves the baseline on `listener` until the process ends.
pub async fn serve(listener: TcpListener, config: BaselineConfig) -> io::Result<()> {
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(io::Error::other)?;
    let base = &config.upstream;
    let state = Baseline {
        client,
        client_keys: config
            .client_keys
            .iter()
            .map(|key| key.as_bytes().into())
            .collect(),
        anthropic: Route::new(
            base,
            "/v1/messages",
            X_API_KEY,
            "",
            &config.anthropic_keys,
            true,
        )?,
        openai: Route::new(
            base,
            "/v1/chat/completions",
            header::AUTHORIZATION,
            "Bearer ",
            &config.openai_keys,
            false,
        )?,
    };
    let app = Router::new()
        .route("/v1/messages", post(messages))
        .route("/v1/chat/completions", post(completions))
        .with_state(Arc::new(state));
    let listener = listener.tap_io(|stream| {
        let _ = stream.set_nodelay(true);
    });
    axum::serve(listener, app).await
}

async fn messages(State(state): State<Arc<Baseline>>, request: Request) -> Response {
    forward(&state, &state.anthropic, request).await
}

async fn completions(State(state): State<Arc<Baseline>>, request: Request) -> Response {
    forward(&state, &state.openai, request).await
}

async fn forward(state: &Baseline, route: &Route, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if !state.accepts(&parts.headers) {
        return (StatusCode::UNAUTHORIZED, "invalid client key").into_response();
    }
    let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response();
    };
    match serde_json::from_slice::<Peek>(&bytes) {
        Ok(peek) if !peek.model.is_empty() => {}
        _ => return (StatusCode::BAD_REQUEST, "a JSON body with a model").into_response(),
    }
    let mut upstream = state
        .client
        .post(route.url.clone())
        .header(&route.key_header, route.next_key().clone())
        .header(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    if route.anthropic {
        let version = parts
            .headers
            .get(&ANTHROPIC_VERSION)
            .cloned()
            .unwrap_or_else(|| HeaderValue::from_static(DEFAULT_ANTHROPIC_VERSION));
        upstream = upstream.header(ANTHROPIC_VERSION, version);
    }
    let answer = match upstream.body(bytes).send().await {
        Ok(answer) => answer,
        Err(_) => return (StatusCode::BAD_GATEWAY, "upstream unreachable").into_response(),
    };
    let mut response = Response::builder().status(answer.status());
    if let Some(content_type) = answer.headers().get(header::CONTENT_TYPE) {
        response = response.header(header::CONTENT_TYPE, content_type.clone());
    }
    response
        .body(Body::from_stream(answer.bytes_stream()))
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}

impl Baseline {
    /// Whether the request carries one of the client keys: `x-api-key`
    /// first (Anthropic SDKs), else a bearer token (OpenAI SDKs), as keygate
    /// looks for them. A plain comparison: constant time is keygate's
    /// business, not the minimum.
    fn accepts(&self, headers: &HeaderMap) -> bool {
        let presented = headers
            .get(&X_API_KEY)
            .map(HeaderValue::as_bytes)
            .or_else(|| {
                headers
                    .get(header::AUTHORIZATION)
                    .and_then(|value| value.as_bytes().strip_prefix(b"Bearer "))
            });
        presented
            .is_some_and(|presented| self.client_keys.iter().any(|key| key.as_ref() == presented))
    }
}
