//! Calls on paths keygate passes through whole, without reading them
//! (batches, files, a stored response): the client's body and content
//! type go upstream as they came, with a pool key, or with the one key
//! that can see the resource the path names. The answer comes back whole
//! (bounded by `MAX_UPSTREAM_BODY_BYTES`), with its own content type.

use axum::body::Body;
use axum::http::{HeaderMap, Method, header};
use bytes::Bytes;

use crate::app_state::AppState;
use crate::domain::ProviderKind;
use crate::error::ApiError;
use crate::extract::read_bytes;
use crate::gateway::Proxied;
use crate::observe::RequestLog;
use crate::providers::{BoundResource, UpstreamCall};
use crate::routes::messages::forwarded;

/// One passed-through call: where it goes and what it sends.
pub struct ResourceCall {
    pub provider: ProviderKind,
    pub method: Method,
    /// The upstream path, with the client's query when it has one.
    pub path: String,
    pub bound: Option<BoundResource>,
}

impl ResourceCall {
    /// A call with no body (GET, DELETE, a cancel).
    pub async fn send(
        self,
        state: &AppState,
        log: &RequestLog,
        client_headers: &HeaderMap,
    ) -> Result<Proxied<Bytes>, ApiError> {
        self.send_body(state, log, client_headers, Bytes::new())
            .await
    }

    /// A call with the client's body, read whole within `MAX_BODY_BYTES`
    /// (a multipart upload too: a 413 past it, nothing kept half).
    pub async fn send_client_body(
        self,
        state: &AppState,
        log: &RequestLog,
        client_headers: &HeaderMap,
        body: Body,
    ) -> Result<Proxied<Bytes>, ApiError> {
        let bytes = read_bytes(body, state.body_limit).await?;
        self.send_body(state, log, client_headers, bytes).await
    }

    pub async fn send_body(
        self,
        state: &AppState,
        log: &RequestLog,
        client_headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Proxied<Bytes>, ApiError> {
        let mut headers = match self.provider {
            ProviderKind::Anthropic => forwarded(client_headers),
            _ => HeaderMap::new(),
        };
        if !body.is_empty()
            && let Some(content_type) = client_headers.get(header::CONTENT_TYPE)
        {
            headers.insert(header::CONTENT_TYPE, content_type.clone());
        }
        let call = UpstreamCall::resource(
            self.provider,
            self.method,
            self.path,
            body,
            headers,
            self.bound,
        );
        state.gateway.json(&call, log).await
    }
}

/// `?query` of `uri`, or nothing.
pub fn query_of(uri: &axum::http::Uri) -> String {
    uri.query().map(|q| format!("?{q}")).unwrap_or_default()
}
