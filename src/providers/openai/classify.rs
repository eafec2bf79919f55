//! Classifying OpenAI errors. The notable case: a 429 whose code is
//! `insufficient_quota` means the account's credit is gone, so the key is
//! taken out of rotation (`invalid`) instead of cooling down for a minute.

use reqwest::header::HeaderMap;

use super::wire::{ErrorBody, ErrorEnvelope};
use crate::domain::{Failure, UpstreamDetail};
use crate::providers::error_text::snippet;

const INSUFFICIENT_QUOTA: &str = "insufficient_quota";

/// A non-2xx answer from the Chat Completions API.
pub fn classify(status: u16, headers: &HeaderMap, body: &[u8]) -> Failure {
    let error = serde_json::from_slice::<ErrorEnvelope>(body)
        .ok()
        .map(|e| e.error);
    let retry_after = crate::providers::cooldown_hint(
        crate::domain::ProviderKind::OpenAI,
        headers,
        std::time::SystemTime::now(),
    );
    from_error(status, error, retry_after, || snippet(body))
}

/// An `{"error": {...}}` object inside a stream, before any content.
pub fn classify_stream_error(error: ErrorBody) -> Failure {
    let status = match error.kind.as_deref().or(error.code_text()) {
        Some("insufficient_quota")
        | Some("rate_limit_exceeded")
        | Some("requests")
        | Some("tokens") => 429,
        Some("invalid_api_key") | Some("authentication_error") => 401,
        Some("invalid_request_error") => 400,
        _ => 500,
    };
    from_error(status, Some(error), None, || {
        "the upstream stream reported an error".into()
    })
}

fn from_error(
    status: u16,
    error: Option<ErrorBody>,
    retry_after: Option<std::time::Duration>,
    fallback_message: impl FnOnce() -> String,
) -> Failure {
    let quota_gone = error.as_ref().is_some_and(|e| {
        e.code_text() == Some(INSUFFICIENT_QUOTA) || e.kind.as_deref() == Some(INSUFFICIENT_QUOTA)
    });
    let error_type = error
        .as_ref()
        .and_then(|e| e.code_text().or(e.kind.as_deref()))
        .unwrap_or(default_error_type(status))
        .to_string();
    let message = error
        .and_then(|e| e.message)
        .unwrap_or_else(fallback_message);
    if status == 429 && quota_gone {
        return Failure::KeyRejected(UpstreamDetail {
            status: Some(status),
            error_type,
            message,
        });
    }
    Failure::from_status(status, retry_after, error_type, message)
}

fn default_error_type(status: u16) -> &'static str {
    match status {
        401 => "invalid_api_key",
        403 => "permission_denied",
        404 => "not_found",
        429 => "rate_limit_exceeded",
        500..=599 => "server_error",
        _ => "invalid_request_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class_of(status: u16, body: &str) -> Failure {
        classify(status, &HeaderMap::new(), body.as_bytes())
    }

    #[test]
    fn insufficient_quota_rejects_the_key_instead_of_cooling_it() {
        let body = r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
        match class_of(429, body) {
            Failure::KeyRejected(detail) => assert_eq!(detail.error_type, "insufficient_quota"),
            other => panic!("expected a rejected key, got {other:?}"),
        }
    }

    #[test]
    fn an_ordinary_429_is_a_rate_limit() {
        let body = r#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
        assert!(matches!(class_of(429, body), Failure::RateLimited { .. }));
    }
}
