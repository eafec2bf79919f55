//! `ApiJson<T>`: a JSON body extractor whose every rejection is an
//! `ApiError` with a message that says what is wrong and where
//! (`messages[0].role: unknown variant ...`). The content type is checked
//! before, by `routes::browser_guard`: JSON or none (a body without one is
//! read as JSON, as the Node backend did).
//!
//! Reading a body fails with 413 past `MAX_BODY_BYTES` (before any of it is
//! read when the declared length is already too large:
//! `routes::browser_guard::body_refusal_response`)
//! and with 408 when it does not arrive in time (`BodyReadTimeout`).

use axum::body::{Bytes, HttpBody};
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use bytes::BytesMut;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;

use crate::app_state::AppState;
use crate::error::{ApiError, BodyReadTimeout};

pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::payload_too_large(state.body_limit)
                } else if let Some(timeout) = BodyReadTimeout::find_in(&rejection) {
                    ApiError::body_timeout(timeout)
                } else {
                    ApiError::bad_request(format!("could not read the request body: {rejection}"))
                }
            })?;
        parse_json(&bytes).map(ApiJson)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None => {
            return Err(ApiError::bad_request(
                "request body is empty; send a JSON object",
            ));
        }
        // serde would read a JSON array as a struct's fields in order; every
        // body keygate accepts is an object, so say that plainly.
        Some(b'{') => {}
        Some(_) => return Err(ApiError::bad_request("request body must be a JSON object")),
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_syntax() || inner.is_eof() || path == "." {
            ApiError::bad_request(format!("invalid JSON body: {inner}"))
        } else {
            ApiError::bad_request(format!("{path}: {inner}"))
        }
    })?;
    deserializer
        .end()
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    Ok(value)
}

/// Reads a whole body, up to `limit` bytes (413 past it), into one buffer
/// sized from `Content-Length`. Each chunk is copied in and dropped as it
/// arrives: collecting the chunks first and joining them at the end would
/// hold a large body twice.
pub async fn read_bytes(body: axum::body::Body, limit: usize) -> Result<Bytes, ApiError> {
    let declared = HttpBody::size_hint(&body).lower();
    if declared > limit as u64 {
        return Err(ApiError::payload_too_large(limit));
    }
    let mut buffer = BytesMut::with_capacity(declared as usize);
    let mut body = Limited::new(body, limit);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| {
            if error.is::<LengthLimitError>() {
                ApiError::payload_too_large(limit)
            } else if let Some(timeout) = BodyReadTimeout::find_in(&*error) {
                ApiError::body_timeout(timeout)
            } else {
                ApiError::bad_request(format!("could not read the request body: {error}"))
            }
        })?;
        if let Ok(data) = frame.into_data() {
            buffer.extend_from_slice(&data);
        }
    }
    Ok(buffer.freeze())
}
