//! How the gateway's failures become client answers: which status, which
//! error type, what the message says, and when to retry.

use std::time::Duration;

use axum::http::StatusCode;

use super::failover::GatewayError;
use crate::domain::{Failure, ceil_secs};
use crate::error::ApiError;
use crate::keypool::{BoundKeyGone, PoolUnavailable};

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
                    ceil_secs(retry_after).max(1)
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
            // The route names the resource in front of these messages.
            GatewayError::BoundKeyCooling { key, retry_after } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                format!(
                    "belongs to key {key}, the only key that can see it, which is cooling down \
                     after a rate limit; retry in {} s",
                    ceil_secs(retry_after).max(1)
                ),
            )
            .with_retry_after(retry_after),
            GatewayError::BoundKeyGone { key, why } => {
                let why = match why {
                    BoundKeyGone::Deleted => "has been deleted from the pool".to_string(),
                    BoundKeyGone::Disabled => "is disabled by an admin".to_string(),
                    BoundKeyGone::Invalid(reason) => {
                        format!("was rejected by the upstream ({reason})")
                    }
                };
                ApiError::new(
                    StatusCode::GONE,
                    "not_found_error",
                    format!("belongs to key {key}, which {why}; no other key can see it"),
                )
            }
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
        Failure::QuotaSpent { rest, .. } => {
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", summary)
                .with_retry_after(rest)
        }
        Failure::Timeout(_) => ApiError::new(StatusCode::GATEWAY_TIMEOUT, "timeout_error", summary),
        // Every key tried lacks access to the model: the upstream's answer.
        Failure::AccessDenied(detail) | Failure::NoAccess(detail) => ApiError::new(
            detail
                .status
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::FORBIDDEN),
            detail.error_type,
            detail.message,
        ),
        Failure::Unfit(detail) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            detail.message,
        ),
        // A rejected key is our problem, not the client's: never a 401 to them.
        Failure::KeyRejected(_) | Failure::ProviderFault(_) | Failure::ClientFault(_) => {
            ApiError::new(StatusCode::BAD_GATEWAY, "upstream_error", summary)
        }
    }
}
