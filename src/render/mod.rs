//! Stream renderers: how frames that passed the gate reach each kind of
//! client. `chat_events` speaks keygate's own `/api/chat` events;
//! `passthrough` re-sends the provider's events as they came (for the
//! SDK-compatible routes); translation to another API lives in `translate`.

pub mod chat_events;
pub mod passthrough;

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::keypool::KeyLease;

/// `x-keygate-attempts` and `x-keygate-key`, plus the upstream's
/// rate-limit headers from the answering attempt.
pub fn gateway_headers(mut upstream: HeaderMap, key: &KeyLease, attempts: u32) -> HeaderMap {
    upstream.insert(
        HeaderName::from_static("x-keygate-attempts"),
        HeaderValue::from(attempts),
    );
    if let Ok(id) = HeaderValue::from_str(key.id.as_str()) {
        upstream.insert(HeaderName::from_static("x-keygate-key"), id);
    }
    upstream
}

/// An SSE response; proxies are asked not to buffer it.
pub fn sse_response(mut headers: HeaderMap, body: axum::body::Body) -> Response {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    (headers, body).into_response()
}
