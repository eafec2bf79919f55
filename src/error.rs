//! `ApiError`: every error keygate answers, as a status and the JSON body
//! `{"error": {"type": "...", "message": "..."}}`. Errors are logged here,
//! once, inside the request's span (which carries the request id).

use std::borrow::Cow;
use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::gateway::{Failure, GatewayError};
use crate::keypool::PoolUnavailable;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub error_type: Cow<'static, str>,
    pub message: String,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        error_type: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            error_type: error_type.into(),
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found_error", message)
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            format!("request body is larger than the limit of {limit} bytes"),
        )
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            message,
        )
    }

    fn with_retry_after(mut self, wait: Duration) -> Self {
        // Whole seconds, rounded up, and never 0: "retry now" would just hit
        // the same cooling keys again.
        self.retry_after = Some(crate::keypool::ceil_secs(wait).max(1));
        self
    }
}

/// Whose error shape a route answers in, so each client's SDK raises its
/// usual exception types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// keygate's own routes: `{"error": {"type", "message"}}`.
    Gateway,
    /// Anthropic's: `{"type": "error", "error": {"type", "message"}}`.
    Anthropic,
    /// OpenAI's: `{"error": {"message", "type", "param", "code"}}`.
    OpenAI,
}

impl Dialect {
    /// The dialect of the route a request is for: the Anthropic Messages
    /// route, `/v1/models` when an Anthropic SDK asks (it always sends
    /// `anthropic-version`), other `/v1/` routes OpenAI's, the rest keygate's.
    pub fn of_request<B>(request: &axum::http::Request<B>) -> Self {
        let path = request.uri().path();
        if path.starts_with("/v1/messages")
            || (path.starts_with("/v1/models")
                && request.headers().contains_key("anthropic-version"))
        {
            Dialect::Anthropic
        } else if path.starts_with("/v1/") {
            Dialect::OpenAI
        } else {
            Dialect::Gateway
        }
    }
}

/// An error body in `dialect`'s shape.
pub fn error_body(dialect: Dialect, error_type: &str, message: &str) -> serde_json::Value {
    match dialect {
        Dialect::Gateway => json!({"error": {"type": error_type, "message": message}}),
        Dialect::Anthropic => {
            json!({"type": "error", "error": {"type": error_type, "message": message}})
        }
        Dialect::OpenAI => {
            json!({"error": {"message": message, "type": error_type, "param": null, "code": null}})
        }
    }
}

impl ApiError {
    /// The response in `dialect`'s shape; logged here, once.
    pub fn into_response_in(self, dialect: Dialect) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = self.status.as_u16(), error_type = %self.error_type, message = %self.message, "request failed");
        } else {
            tracing::info!(status = self.status.as_u16(), error_type = %self.error_type, message = %self.message, "request refused");
        }
        let body = error_body(dialect, &self.error_type, &self.message);
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.into_response_in(Dialect::Gateway)
    }
}

impl From<PoolUnavailable> for ApiError {
    fn from(_: PoolUnavailable) -> Self {
        ApiError::unavailable("keygate is shutting down")
    }
}

impl From<GatewayError> for ApiError {
    fn from(error: GatewayError) -> Self {
        match error {
            GatewayError::AllKeysCoolingDown {
                provider,
                retry_after,
            } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                format!(
                    "every {provider} key is cooling down after a rate limit; retry in {} s",
                    crate::keypool::ceil_secs(retry_after).max(1)
                ),
            )
            .with_retry_after(retry_after),
            GatewayError::NoUsableKey {
                provider, total: 0, ..
            } => ApiError::unavailable(format!(
                "no {provider} API key is configured; set {} or add one",
                provider.env().keys
            )),
            GatewayError::NoUsableKey {
                provider,
                total,
                invalid,
            } => ApiError::unavailable(format!(
                "{provider} has no usable key: {invalid} of {total} were rejected by the upstream; \
                 fix them, then POST /api/keypool/{provider}/reset"
            )),
            GatewayError::AttemptsExhausted { attempts, last } => exhausted(attempts, last),
            GatewayError::ProviderOverloaded {
                provider,
                failing,
                usable,
                last,
            } => {
                let detail = last.detail();
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "overloaded_error",
                    format!(
                        "{provider} looks overloaded: {failing} of {usable} keys met upstream errors in the last 30 s \
                         (last: {}); no key was benched for it, retry later",
                        detail.message
                    ),
                )
                .with_retry_after(Duration::from_secs(5))
            }
            GatewayError::RequestRejected(detail) => ApiError::new(
                detail
                    .status
                    .and_then(|s| StatusCode::from_u16(s).ok())
                    .unwrap_or(StatusCode::BAD_REQUEST),
                detail.error_type,
                detail.message,
            ),
            GatewayError::PoolUnavailable => PoolUnavailable.into(),
        }
    }
}

fn exhausted(attempts: u32, last: Failure) -> ApiError {
    let detail = last.detail();
    let said = match detail.status {
        Some(status) => format!("{status} {}: {}", detail.error_type, detail.message),
        None => format!("{}: {}", detail.error_type, detail.message),
    };
    let summary = format!("all {attempts} upstream attempts failed; the last one: {said}");
    match last {
        Failure::RateLimited { retry_after, .. } => {
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", summary)
                .with_retry_after(retry_after.unwrap_or(Duration::from_secs(1)))
        }
        Failure::Timeout(_) => ApiError::new(StatusCode::GATEWAY_TIMEOUT, "timeout_error", summary),
        // A rejected key is our problem, not the client's: never a 401 to them.
        Failure::KeyRejected(_) | Failure::ProviderFault(_) | Failure::ClientFault(_) => {
            ApiError::new(StatusCode::BAD_GATEWAY, "upstream_error", summary)
        }
    }
}
