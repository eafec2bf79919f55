//! Refusing what any web page can make a visitor's browser send. CORS
//! (`routes::cors`) only keeps answers from a page; a request the browser
//! sends without asking first (no preflight) has already done its work by
//! then, so it is refused here, before any route runs.
//!
//! Both are checks for `routes::guard` (no per-request boxing).
//!
//! - `host_refusal`: when keygate listens on loopback (or `ALLOWED_HOSTS` is
//!   set), `Host` must name loopback or an allowed host. A page that points
//!   its own DNS name at 127.0.0.1 (DNS rebinding) still sends its own
//!   name: 421.
//! - `body_refusal_response`: a declared length past `MAX_BODY_BYTES` is
//!   413 before the upload; a body must be declared JSON. `text/plain`, form
//!   and multipart bodies are exactly what a page may POST anywhere without
//!   a preflight: 415. A body with no content type is read as JSON (`curl`
//!   without `-H`), except from a page CORS does not admit: a page can send
//!   one too (a `Blob` or `ArrayBuffer` body), but the browser always adds
//!   its `Origin`.

use axum::body::HttpBody;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use crate::domain::browser::{AllowedHosts, CorsOrigins};
use crate::error::{ApiError, Dialect};

/// The 421 for a request whose `Host` keygate does not answer to.
pub fn host_refusal(hosts: &AllowedHosts, request: &Request) -> Option<Response> {
    // Host, else the HTTP/2 `:authority` (or an absolute request target).
    let host = match request.headers().get(header::HOST) {
        Some(value) => Some(value.to_str().unwrap_or("")),
        None => request.uri().authority().map(|a| a.as_str()),
    };
    // Browsers always name the host; a client that names none is no page.
    match host {
        Some(host) if !hosts.allows(host) => {
            let message = format!(
                "keygate does not answer to the host name {host:?}: it is not loopback \
                 (localhost, 127.0.0.1, [::1]) nor listed in ALLOWED_HOSTS; if the name is \
                 keygate's, add it to ALLOWED_HOSTS (a JSON array of host names)"
            );
            let dialect = Dialect::of_request(request);
            Some(
                ApiError::new(
                    StatusCode::MISDIRECTED_REQUEST,
                    "misdirected_request",
                    message,
                )
                .into_response_in(dialect),
            )
        }
        _ => None,
    }
}

/// The 413 for a declared `Content-Length` past `limit`, answered before
/// anything reads the body: reading is what makes hyper answer `Expect:
/// 100-continue` with `100 Continue`, so a client that asked first is told
/// no before it uploads a byte. Else the 415 for a body that is not JSON.
pub fn body_refusal_response(
    origins: &CorsOrigins,
    limit: usize,
    request: &Request,
) -> Option<Response> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > u64::try_from(limit).unwrap_or(u64::MAX)) {
        return Some(
            ApiError::payload_too_large(limit).into_response_in(Dialect::of_request(request)),
        );
    }
    if !has_body(request) {
        return None;
    }
    let message = body_refusal(request.headers(), request.uri().path(), origins)?;
    Some(
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request_error",
            message,
        )
        .into_response_in(Dialect::of_request(request)),
    )
}

/// A declared length above zero, a chunked body, or (HTTP/2, or a body
/// built in a test) a body not known to be empty.
fn has_body(request: &Request) -> bool {
    let headers = request.headers();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|length| length > 0);
    declared || headers.contains_key(header::TRANSFER_ENCODING) || !request.body().is_end_stream()
}

/// The one route whose body is not JSON: OpenAI's file upload.
const UPLOAD_PATH: &str = "/v1/files";

/// Why a body sent to `path` with these headers is refused, if it is.
fn body_refusal(headers: &HeaderMap, path: &str, origins: &CorsOrigins) -> Option<String> {
    let Some(content_type) = headers.get(header::CONTENT_TYPE) else {
        let origin = headers.get(header::ORIGIN)?;
        return (!super::cors::origin_allowed(origins, origin, path)).then(|| {
            "a request body from a web page must be sent with content-type: application/json"
                .to_string()
        });
    };
    let essence = essence(content_type)?;
    // A file upload is a multipart form, a type any page may post without
    // asking first: it is taken only on the upload route, and from a page
    // only if CORS admits that page.
    if essence == "multipart/form-data"
        && path == UPLOAD_PATH
        && headers
            .get(header::ORIGIN)
            .is_none_or(|origin| super::cors::origin_allowed(origins, origin, path))
    {
        return None;
    }
    Some(format!(
        "the request body must be JSON, sent with content-type: application/json, not {essence:?}; \
         with curl, add -H 'content-type: application/json' (curl -d alone sends a form type)"
    ))
}

/// The media type of a `Content-Type` that is not JSON, lowercase and
/// without parameters; `None` for `application/json` (any charset) and
/// `application/<anything>+json`.
fn essence(content_type: &HeaderValue) -> Option<String> {
    let text = String::from_utf8_lossy(content_type.as_bytes());
    let essence = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let json = essence == "application/json"
        || essence
            .strip_prefix("application/")
            .and_then(|subtype| subtype.strip_suffix("+json"))
            .is_some_and(|name| !name.is_empty() && !name.contains('/'));
    (!json).then_some(essence)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(pairs: &[(&str, &str)], path: &str, origins: &CorsOrigins) -> Option<String> {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        body_refusal(&headers, path, origins)
    }

    #[test]
    fn json_types_pass_and_browser_simple_types_do_not() {
        let origins = CorsOrigins::loopback();
        for json in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/vnd.api+json",
            "application/merge-patch+json ; charset=UTF-8",
        ] {
            let headers = [("content-type", json)];
            assert_eq!(refusal(&headers, "/api/chat", &origins), None, "{json}");
        }
        for other in [
            "text/plain",
            "text/plain;charset=UTF-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/+json",
            "text/json",
            "",
        ] {
            let headers = [("content-type", other)];
            let message = refusal(&headers, "/api/chat", &origins).unwrap();
            assert!(message.contains("application/json"), "{message}");
        }
    }

    #[test]
    fn an_untyped_body_is_json_unless_a_refused_page_sent_it() {
        let origins = CorsOrigins::parse(["*"]).unwrap();
        assert_eq!(refusal(&[], "/api/chat", &origins), None);
        let evil = [("origin", "https://evil.example")];
        assert_eq!(refusal(&evil, "/api/chat", &origins), None);
        assert!(refusal(&evil, "/api/keypool/anthropic/keys", &origins).is_some());
        let default = CorsOrigins::loopback();
        assert!(refusal(&evil, "/api/chat", &default).is_some());
        let local = [("origin", "http://localhost:5173")];
        assert_eq!(refusal(&local, "/api/chat", &default), None);
    }
}
