//! `ApiError`: every error keygate answers, as a status and the JSON body
//! `{"error": {"type": "...", "message": "..."}}`. Errors are logged here,
//! once, inside the request's span (which carries the request id).

use std::borrow::Cow;
use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The error type an error answer carried, left on the response so the
/// usage ledger can record it without reading the body.
#[derive(Debug, Clone)]
pub struct ErrorClass(pub Cow<'static, str>);

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub error_type: Cow<'static, str>,
    pub message: String,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u64>,
    /// What went wrong inside keygate, for the log line only; clients get
    /// `message`.
    pub cause: Option<String>,
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
            cause: None,
        }
    }

    /// Adds the internal reason to the (single) log line of this error.
    pub fn caused_by(mut self, cause: impl Into<String>) -> Self {
        self.cause = Some(cause.into());
        self
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

    /// 408: the request body did not arrive in time (see `BodyReadTimeout`).
    pub fn body_timeout(timeout: &BodyReadTimeout) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout_error",
            timeout.to_string(),
        )
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            message,
        )
    }

    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        // Whole seconds, rounded up, and never 0: "retry now" would just hit
        // the same cooling keys again.
        self.retry_after = Some(crate::domain::ceil_secs(wait).max(1));
        self
    }
}

/// A request body that had not arrived whole by its deadline
/// (BODY_READ_TIMEOUT_SECS after its head): the error the server's body
/// deadline raises inside the body, which extractors turn into a 408.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the request body did not arrive within {} s", after.as_secs_f64())]
pub struct BodyReadTimeout {
    pub after: Duration,
}

impl BodyReadTimeout {
    /// The timeout behind `error`, however deep in its chain of sources.
    pub fn find_in<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a Self> {
        std::iter::successors(Some(error), |error| error.source())
            .find_map(|error| error.downcast_ref::<Self>())
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
    /// The response in `dialect`'s shape. This is the one log line of the
    /// error (the request span adds the request id; the access log skips
    /// error responses, so nothing is said twice).
    pub fn into_response_in(self, dialect: Dialect) -> Response {
        let status = self.status.as_u16();
        let cause = self.cause.as_deref().unwrap_or("");
        if self.status.is_server_error() {
            tracing::error!(status, error_type = %self.error_type, message = %self.message, cause, "request failed");
        } else {
            tracing::info!(status, error_type = %self.error_type, message = %self.message, "request refused");
        }
        let body = error_body(dialect, &self.error_type, &self.message);
        let mut response = (self.status, Json(body)).into_response();
        response
            .extensions_mut()
            .insert(ErrorClass(self.error_type));
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// A route's result as its response: the answer, or the error in
/// `dialect`'s shape.
pub fn answer_in(dialect: Dialect, result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(|error| error.into_response_in(dialect))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.into_response_in(Dialect::Gateway)
    }
}
