//! The HTTP call to `POST /v1/messages` with one key, and the classification
//! of what came back. No retries here: the failover loop owns those.

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use super::API_VERSION;
use super::wire::{ErrorEnvelope, MessagesResponse};
use crate::gateway::retry_after::parse_retry_after;
use crate::gateway::{Failure, UpstreamDetail};

pub async fn create_message(
    http: &reqwest::Client,
    base_url: &str,
    key: &SecretString,
    body: Bytes,
) -> Result<MessagesResponse, Failure> {
    let response = http
        .post(format!("{base_url}/v1/messages"))
        .header("x-api-key", key_header(key)?)
        .header("anthropic-version", API_VERSION)
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| Failure::network(&e))?;
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.map_err(|e| Failure::network(&e))?;
    if !status.is_success() {
        return Err(classify(status.as_u16(), &headers, &bytes));
    }
    serde_json::from_slice(&bytes).map_err(|e| Failure::malformed(&e.to_string()))
}

/// A header value marked sensitive, so no debug output ever shows it.
fn key_header(key: &SecretString) -> Result<HeaderValue, Failure> {
    let mut value = HeaderValue::from_str(key.expose_secret()).map_err(|_| {
        Failure::KeyRejected(UpstreamDetail {
            status: None,
            error_type: "invalid_key".into(),
            message: "the stored key contains characters an HTTP header cannot carry".into(),
        })
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// Reads Anthropic's error body (or whatever a proxy in front of it sent).
pub fn classify(status: u16, headers: &HeaderMap, body: &[u8]) -> Failure {
    let parsed = serde_json::from_slice::<ErrorEnvelope>(body).ok();
    let error_type = parsed
        .as_ref()
        .and_then(|e| e.error.kind.clone())
        .unwrap_or_else(|| default_error_type(status).to_string());
    let message = parsed
        .and_then(|e| e.error.message)
        .unwrap_or_else(|| snippet(body));
    let retry_after = parse_retry_after(headers, std::time::SystemTime::now());
    Failure::from_status(status, retry_after, error_type, message)
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

/// A short, printable excerpt of a non-JSON error body.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
    if text.trim().is_empty() {
        "the upstream gave no error message".into()
    } else {
        text.trim().to_string()
    }
}
