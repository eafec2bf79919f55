//! The shared path of every proxied request: count it, run it through the
//! failover loop on its provider's pool, and read the answering attempt
//! either as a whole body or up to the stream's first-content gate.

use std::future::Future;
use std::time::SystemTime;

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::error::ApiError;
use crate::gateway::relay::{RelayContext, Render, relay_body};
use crate::gateway::stream::{GatedStream, frames, pass_gate};
use crate::gateway::{Answered, Failure, with_failover};
use crate::keypool::{KeyLease, RequestTracker};
use crate::providers::{UpstreamCall, frame_reader, passthrough_headers, rate_limits, read_body};
use crate::render::{gateway_headers, sse_response};
use crate::state::AppState;

/// Runs `call`, reading each 2xx attempt with `read` (inside the attempt, so
/// a malformed answer still moves on to the next key). The tracker comes
/// back unfinished: the caller finishes it when the client has its answer.
pub async fn run<T, F, Fut>(
    state: &AppState,
    call: &UpstreamCall,
    read: F,
) -> Result<(Answered<T>, RequestTracker), ApiError>
where
    F: Fn(reqwest::Response) -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let pool = state.pools.get(call.provider).ok_or_else(|| {
        ApiError::unavailable(format!("provider {} is not configured", call.provider))
    })?;
    let mut tracker = RequestTracker::start(pool);
    let read = &read;
    let result = with_failover(
        pool,
        state.retry,
        call.model.as_ref(),
        &mut tracker,
        |key| async move {
            let response = state.upstreams.send(call, &key).await?;
            // Every answer's rate-limit windows feed the headroom strategy.
            let limits = rate_limits(call.provider, response.headers(), SystemTime::now());
            if !limits.is_empty() {
                pool.observe(&key.id, limits);
            }
            read(response).await
        },
    )
    .await;
    match result {
        Ok(answered) => Ok((answered, tracker)),
        Err(error) => {
            tracker.finish(false);
            Err(error.into())
        }
    }
}

/// A whole JSON answer: the headers worth passing on and the raw body,
/// checked to be JSON so a garbled 2xx counts against the attempt.
pub async fn run_json(
    state: &AppState,
    call: &UpstreamCall,
) -> Result<Answered<(HeaderMap, Bytes)>, ApiError> {
    let (answered, tracker) = run(state, call, |response| async move {
        let (headers, body) = read_body(response).await?;
        serde_json::from_slice::<serde::de::IgnoredAny>(&body)
            .map_err(|e| Failure::malformed(&e.to_string()))?;
        Ok((headers, body))
    })
    .await?;
    tracker.finish(true);
    Ok(answered)
}

/// A stream past its gate, with the headers worth passing on. The tracker
/// goes to the relay, which finishes it when the stream ends.
pub async fn run_stream(
    state: &AppState,
    call: &UpstreamCall,
) -> Result<(Answered<(HeaderMap, GatedStream)>, RequestTracker), ApiError> {
    let reader = frame_reader(call.provider);
    let idle_timeout = state.stream_idle_timeout;
    run(state, call, |response| async move {
        let headers = passthrough_headers(response.headers());
        let gated = pass_gate(frames(response), reader, idle_timeout).await?;
        Ok((headers, gated))
    })
    .await
}

/// Runs `call` as a stream and answers with it: the headers of the
/// answering attempt, then the frames through `render`, made once the
/// answering key and attempt count are known.
pub async fn stream_response<R: Render>(
    state: &AppState,
    call: &UpstreamCall,
    make_render: impl FnOnce(&KeyLease, u32) -> R,
) -> Result<Response, ApiError> {
    let (answered, tracker) = run_stream(state, call).await?;
    let (upstream_headers, gated) = answered.value;
    let headers = gateway_headers(upstream_headers, &answered.key, answered.attempts);
    let render = make_render(&answered.key, answered.attempts);
    let context = RelayContext {
        read: frame_reader(call.provider),
        idle_timeout: state.stream_idle_timeout,
        report: answered.report,
        tracker,
        secret: answered.key.secret.clone(),
    };
    Ok(sse_response(headers, relay_body(gated, render, context)))
}

/// A whole upstream JSON body passed through, with the gateway's headers.
pub fn json_response(mut headers: HeaderMap, body: Bytes) -> Response {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    (headers, body).into_response()
}
