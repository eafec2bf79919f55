//! What the client receives; translation to another API lives in
//! `translate`.
//!
//! - `chat_answer`: the non-streamed `/api/chat` answer.
//! - `chat_events`: the `/api/chat` stream events.
//! - `passthrough`: the provider's own events re-sent as they came (the
//!   SDK-compatible routes).

pub mod chat_answer;
pub mod chat_events;
pub mod passthrough;

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::Proxied;
use crate::domain::KeyId;

/// `x-keygate-attempts` and `x-keygate-key`, plus the upstream's
/// rate-limit headers from the answering attempt.
pub fn gateway_headers(mut upstream: HeaderMap, key: &KeyId, attempts: u32) -> HeaderMap {
    upstream.insert(
        HeaderName::from_static("x-keygate-attempts"),
        HeaderValue::from(attempts),
    );
    if let Ok(id) = HeaderValue::from_str(key.as_str()) {
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

/// A whole upstream body passed through, with the gateway's headers; JSON
/// unless the upstream said it is something else (a file, JSONL).
pub fn json_response(answer: Proxied<Bytes>) -> Response {
    let mut headers = answer.headers;
    headers
        .entry(header::CONTENT_TYPE)
        .or_insert(HeaderValue::from_static("application/json"));
    (headers, answer.value).into_response()
}
