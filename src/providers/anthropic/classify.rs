//! Classifying Anthropic errors, from an HTTP status or from an `error`
//! event inside a stream (which arrives after a 200, so its type decides).

use reqwest::header::HeaderMap;

use super::wire::{ErrorBody, ErrorEnvelope};
use crate::domain::Failure;
use crate::providers::error_text::snippet;

/// A non-2xx answer (or whatever a proxy in front of the API sent).
pub fn classify(status: u16, headers: &HeaderMap, body: &[u8]) -> Failure {
    let parsed = serde_json::from_slice::<ErrorEnvelope>(body).ok();
    let error_type = parsed
        .as_ref()
        .and_then(|e| e.error.kind.clone())
        .unwrap_or_else(|| default_error_type(status).to_string());
    let message = parsed
        .and_then(|e| e.error.message)
        .unwrap_or_else(|| snippet(body));
    let retry_after = crate::providers::cooldown_hint(
        crate::domain::ProviderKind::Anthropic,
        headers,
        std::time::SystemTime::now(),
    );
    Failure::from_status(status, retry_after, error_type, message)
}

/// An `event: error` inside a stream, classified as the status its type
/// stands for (errors page: `overloaded_error` is 529, and so on).
pub fn classify_stream_error(error: ErrorBody) -> Failure {
    let error_type = error.kind.unwrap_or_else(|| "api_error".into());
    let status = status_of(&error_type);
    let message = error
        .message
        .unwrap_or_else(|| "the upstream stream reported an error".into());
    Failure::from_status(status, None, error_type, message)
}

fn status_of(error_type: &str) -> u16 {
    match error_type {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => 500,
    }
}

fn default_error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}
