//! `GET /metrics`: every Prometheus series (see `observe::metrics`). Open
//! by default, like most exporters on a private network; with
//! `METRICS_TOKEN` set, scrapers must send it as a bearer token.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;

use crate::app_state::AppState;
use crate::auth::{bearer, same_secret};
use crate::error::ApiError;

/// OpenMetrics 1.0 text, which Prometheus negotiates and reads natively.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.metrics_token {
        let presented = bearer(&headers);
        if !presented.is_some_and(|p| same_secret(p, token.expose_secret())) {
            let mut response = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                "missing or invalid metrics token: send Authorization: Bearer <METRICS_TOKEN>",
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return response;
        }
    }
    match state.observer.metrics().render() {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "the metrics could not be written",
        )
        .into_response(),
    }
}
