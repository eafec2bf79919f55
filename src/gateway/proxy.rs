//! `Gateway`: the one path every proxied request takes. It counts the
//! request, runs it through the failover loop on its provider's pool, reads
//! the answering attempt (as a whole body, or up to a stream's first-content
//! gate), finishes the request's tracker and adds the gateway's headers. A
//! route handler parses its input, calls one method here and renders the
//! answer; it never sees a tracker, so it cannot forget to finish one.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;

use super::failover::{Answered, RetryPolicy, with_failover};
use super::relay::{RelayContext, Render, relay_body};
use super::render::{gateway_headers, sse_response};
use super::stream::{frames, pass_gate};
use crate::domain::{ChatReply, Failure, KeyId};
use crate::error::ApiError;
use crate::keypool::{KeyPools, RequestTracker};
use crate::providers::{UpstreamCall, Upstreams, frame_reader, parse_reply, rate_limits};
use crate::scrub::Scrubber;

/// What the request path needs, built once at start and shared.
pub struct Gateway {
    /// One pool per provider; each pool's actor owns its keys' state.
    pools: KeyPools,
    /// The shared HTTP client and provider endpoints.
    upstreams: Arc<Upstreams>,
    /// Attempts and per-attempt timeout for every proxied request.
    retry: RetryPolicy,
    /// Longest silence between upstream stream events.
    stream_idle_timeout: Duration,
    /// Knows every pool's keys; scrubs what an upstream says mid-stream.
    scrubber: Arc<Scrubber>,
}

/// An answered request: what the answering attempt gave, and what the
/// client is told about it.
pub struct Proxied<T> {
    pub value: T,
    /// The upstream's rate-limit headers and request id, plus
    /// `x-keygate-attempts` and `x-keygate-key`.
    pub headers: HeaderMap,
    pub key: KeyId,
    pub attempts: u32,
}

impl Gateway {
    pub fn new(
        pools: KeyPools,
        upstreams: Arc<Upstreams>,
        retry: RetryPolicy,
        stream_idle_timeout: Duration,
        scrubber: Arc<Scrubber>,
    ) -> Self {
        Self {
            pools,
            upstreams,
            retry,
            stream_idle_timeout,
            scrubber,
        }
    }

    /// A whole JSON answer passed through: the raw body, checked to be
    /// JSON so a garbled 2xx counts against the attempt.
    pub async fn json(&self, call: &UpstreamCall) -> Result<Proxied<Bytes>, ApiError> {
        let upstreams = &self.upstreams;
        self.whole(call, |response| async move {
            let (headers, body) = upstreams.read_body(response).await?;
            serde_json::from_slice::<serde::de::IgnoredAny>(&body)
                .map_err(|e| Failure::malformed(&e.to_string()))?;
            Ok((headers, body))
        })
        .await
    }

    /// A whole answer read as the gateway's chat reply.
    pub async fn chat(&self, call: &UpstreamCall) -> Result<Proxied<ChatReply>, ApiError> {
        let provider = call.provider;
        let upstreams = &self.upstreams;
        self.whole(call, |response| async move {
            let (headers, body) = upstreams.read_body(response).await?;
            Ok((headers, parse_reply(provider, &body)?))
        })
        .await
    }

    /// Runs `call` as a stream and answers with it: the answering attempt's
    /// headers, then its frames through `render`, made once the answering
    /// key and attempt count are known. The relay finishes the tracker
    /// when the stream ends, fails, or the client hangs up.
    pub async fn stream<R: Render>(
        &self,
        call: &UpstreamCall,
        make_render: impl FnOnce(&KeyId, u32) -> R,
    ) -> Result<Response, ApiError> {
        let reader = frame_reader(call.provider);
        let idle_timeout = self.stream_idle_timeout;
        let upstreams = &self.upstreams;
        let (answered, tracker) = self
            .run(call, |response| async move {
                let headers = upstreams.passthrough_headers(response.headers());
                let gated = pass_gate(frames(response), reader, idle_timeout).await?;
                Ok((headers, gated))
            })
            .await?;
        let Answered {
            value: (upstream_headers, gated),
            key,
            attempts,
            report,
        } = answered;
        let headers = gateway_headers(upstream_headers, &key.id, attempts);
        let render = make_render(&key.id, attempts);
        let context = RelayContext {
            read: reader,
            idle_timeout,
            report,
            tracker,
            scrubber: self.scrubber.clone(),
        };
        Ok(sse_response(headers, relay_body(gated, render, context)))
    }

    /// A non-streamed answer: once `read` has the whole of it, the client
    /// has its answer and the request counts as a success.
    async fn whole<T, F, Fut>(&self, call: &UpstreamCall, read: F) -> Result<Proxied<T>, ApiError>
    where
        F: Fn(reqwest::Response) -> Fut,
        Fut: Future<Output = Result<(HeaderMap, T), Failure>>,
    {
        let (answered, tracker) = self.run(call, read).await?;
        tracker.finish(true);
        let (upstream_headers, value) = answered.value;
        Ok(Proxied {
            value,
            headers: gateway_headers(upstream_headers, &answered.key.id, answered.attempts),
            key: answered.key.id.clone(),
            attempts: answered.attempts,
        })
    }

    /// Runs `call` through the failover loop, reading each 2xx attempt with
    /// `read` (inside the attempt, so a malformed answer still moves on to
    /// the next key). On failure the tracker is finished here; on success it
    /// comes back for the caller to finish when the client has its answer.
    async fn run<T, F, Fut>(
        &self,
        call: &UpstreamCall,
        read: F,
    ) -> Result<(Answered<T>, RequestTracker), ApiError>
    where
        F: Fn(reqwest::Response) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let pool = self.pools.get(call.provider).ok_or_else(|| {
            ApiError::unavailable(format!("provider {} is not configured", call.provider))
        })?;
        let mut tracker = RequestTracker::start(pool);
        let read = &read;
        let upstreams = &self.upstreams;
        let result = with_failover(
            pool,
            self.retry,
            call.model.as_ref(),
            &mut tracker,
            |key| async move {
                let response = upstreams.send(call, &key).await?;
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
}
