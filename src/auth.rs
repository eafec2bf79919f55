//! Admin authentication: `Authorization: Bearer <ADMIN_API_KEY>` or
//! `X-API-Key: <ADMIN_API_KEY>`. Compared in constant time over SHA-256
//! digests, so neither content nor length leaks through timing. A missing
//! and a wrong credential get the same 401 body.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::app_state::AppState;
use crate::domain::ClientKeys;
use crate::error::{ApiError, Dialect};

pub async fn require_admin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(admin_key) = state.admin_key.as_deref() else {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "permission_error",
            "admin API disabled: set ADMIN_API_KEY",
        )
        .into_response();
    };
    match presented_credential(request.headers()) {
        Some(presented) if same_secret(presented, admin_key.expose_secret()) => {
            next.run(request).await
        }
        _ => {
            let mut response = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                "missing or invalid admin credentials: send Authorization: Bearer <ADMIN_API_KEY> or X-API-Key",
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
    }
}

/// The credential of `Authorization: Bearer …`; RFC 7235 makes the scheme
/// case-insensitive (`BEARER` is Bearer).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, credential) = v.trim_start().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| credential.trim())
        })
}

/// The credential from `Authorization: Bearer …`, else from `X-API-Key`.
pub fn presented_credential(headers: &HeaderMap) -> Option<&str> {
    bearer(headers).or_else(|| {
        headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    })
}

pub fn same_secret(presented: &str, expected: &str) -> bool {
    let presented = Sha256::digest(presented.as_bytes());
    let expected = Sha256::digest(expected.as_bytes());
    presented.ct_eq(&expected).into()
}

/// Client authentication on the proxy routes when `GATEWAY_API_KEYS` is set
/// (a check for `routes::guard`): one of those keys as `x-api-key`
/// (Anthropic SDKs) or `Authorization: Bearer` (OpenAI SDKs). The client's
/// key is never forwarded upstream: the upstream request is built anew with
/// a pool key.
pub fn client_key_refusal(keys: &ClientKeys, request: &Request) -> Option<Response> {
    if keys.is_empty()
        || presented_client_key(request.headers()).is_some_and(|presented| keys.accepts(presented))
    {
        return None;
    }
    Some(
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "missing or invalid gateway API key: send it as x-api-key or Authorization: Bearer",
        )
        .into_response_in(Dialect::of_request(request)),
    )
}

/// Unlike the admin check, `x-api-key` comes first: that is where the
/// Anthropic SDK puts it, and some clients also send an unrelated bearer.
pub fn presented_client_key(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .or_else(|| bearer(headers))
}
