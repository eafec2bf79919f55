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
use axum::http::header::CONTENT_TYPE;
use axum::response::Response;
use bytes::Bytes;

use super::failover::{Answered, GatewayError, RetryPolicy, with_bound_key, with_failover};
use super::relay::{RelayContext, Render, relay_body};
use super::render::{gateway_headers, sse_response};
use super::stream::{frames, pass_gate};
use crate::affinity::Affinity;
use crate::domain::{ChatReply, Failure, KeyId, KeyLease, UpstreamDetail};
use crate::error::ApiError;
use crate::keypool::{KeyPools, RequestTracker};
use crate::observe::RequestLog;
use crate::providers::{
    Endpoint, UpstreamCall, Upstreams, frame_reader, parse_reply, rate_limits, reply_usage,
};
use crate::scrub::Scrubber;

/// What the request path needs, built once at start and shared.
pub struct Gateway {
    /// One pool per provider; each pool's handle owns its keys' state.
    pools: KeyPools,
    /// The shared HTTP client and provider endpoints.
    upstreams: Arc<Upstreams>,
    /// Attempts and per-attempt timeout for every proxied request.
    retry: RetryPolicy,
    /// Longest silence between upstream stream events.
    stream_idle_timeout: Duration,
    /// Knows every pool's keys; scrubs what an upstream says mid-stream.
    scrubber: Arc<Scrubber>,
    /// Limit on the check that decides whether a 403 is the key's fault.
    probe_timeout: Duration,
    /// Which cache scope each session last used (`affinity`).
    affinity: Arc<Affinity>,
}

/// A lower bound on the tokens of a request of `bytes` bytes. Tokens run
/// at about four bytes of English each, fewer for code and other scripts;
/// six bytes per token undercounts nearly any text, so a request judged
/// too large by it really is.
fn at_least_tokens(bytes: usize) -> u64 {
    (bytes / 6) as u64
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
        probe_timeout: Duration,
        affinity: Arc<Affinity>,
    ) -> Self {
        Self {
            pools,
            upstreams,
            retry,
            stream_idle_timeout,
            scrubber,
            probe_timeout,
            affinity,
        }
    }

    /// A whole JSON answer passed through: the raw body, read for its
    /// model and usage (which also checks it is JSON, so a garbled 2xx
    /// counts against the attempt).
    pub async fn json(
        &self,
        call: &UpstreamCall,
        log: &RequestLog,
    ) -> Result<Proxied<Bytes>, ApiError> {
        let upstreams = &self.upstreams;
        let answer = self
            .whole(call, log, |response| async move {
                // A resource's body is whatever it is (a file, JSONL
                // results): its type goes with it.
                let content_type = matches!(call.endpoint, Endpoint::Resource { .. })
                    .then(|| response.headers().get(CONTENT_TYPE).cloned())
                    .flatten();
                let (mut headers, body) = upstreams.read_body(response).await?;
                if let Some(content_type) = content_type {
                    headers.insert(CONTENT_TYPE, content_type);
                }
                let usage = reply_usage(call, &body)?;
                Ok((headers, (body, usage)))
            })
            .await?;
        let (body, (model, usage)) = answer.value;
        // A resource's answer names no model and carries no new usage.
        if !model.is_empty() {
            log.answered(&model, usage);
        }
        Ok(Proxied {
            value: body,
            headers: answer.headers,
            key: answer.key,
            attempts: answer.attempts,
        })
    }

    /// A whole answer read as the gateway's chat reply.
    pub async fn chat(
        &self,
        call: &UpstreamCall,
        log: &RequestLog,
    ) -> Result<Proxied<ChatReply>, ApiError> {
        let provider = call.provider;
        let upstreams = &self.upstreams;
        let answer = self
            .whole(call, log, |response| async move {
                let (headers, body) = upstreams.read_body(response).await?;
                Ok((headers, parse_reply(provider, &body)?))
            })
            .await?;
        log.answered(&answer.value.model, answer.value.usage);
        Ok(answer)
    }

    /// Runs `call` as a stream and answers with it: the answering attempt's
    /// headers, then its frames through `render`, made once the answering
    /// key and attempt count are known. The relay finishes the tracker
    /// when the stream ends, fails, or the client hangs up.
    pub async fn stream<R: Render>(
        &self,
        call: &UpstreamCall,
        log: &RequestLog,
        make_render: impl FnOnce(&KeyId, u32) -> R,
    ) -> Result<Response, ApiError> {
        let reader = frame_reader(call);
        let idle_timeout = self.stream_idle_timeout;
        let upstreams = &self.upstreams;
        let (answered, tracker) = self
            .run(call, log, |response| async move {
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
        log.first_content();
        let headers = gateway_headers(upstream_headers, &key.id, attempts);
        let render = make_render(&key.id, attempts);
        let context = RelayContext {
            read: reader,
            idle_timeout,
            report,
            tracker,
            scrubber: self.scrubber.clone(),
            log: log.clone(),
        };
        Ok(sse_response(headers, relay_body(gated, render, context)))
    }

    /// A non-streamed answer: once `read` has the whole of it, the client
    /// has its answer and the request counts as a success.
    async fn whole<T, F, Fut>(
        &self,
        call: &UpstreamCall,
        log: &RequestLog,
        read: F,
    ) -> Result<Proxied<T>, ApiError>
    where
        F: Fn(reqwest::Response) -> Fut,
        Fut: Future<Output = Result<(HeaderMap, T), Failure>>,
    {
        let (answered, tracker) = self.run(call, log, read).await?;
        tracker.finish(true);
        let (upstream_headers, value) = answered.value;
        Ok(Proxied {
            value,
            headers: gateway_headers(upstream_headers, &answered.key.id, answered.attempts),
            key: answered.key.id.clone(),
            attempts: answered.attempts,
        })
    }

    /// Decides whose fault a failed attempt really was, where the status
    /// alone cannot say:
    /// - a 403 (or a 404 naming a model) may be the key's or the model's:
    ///   a cheap check of the key itself (`GET /v1/models`) decides. If the
    ///   key passes, it merely lacks this model and sits out for it alone;
    ///   if not, it is rejected. Without a verdict, the key is spared.
    /// - a 429 for a request larger than the key's whole per-minute token
    ///   limit is the request's fault: waiting would not help.
    async fn judge(&self, call: &UpstreamCall, key: &KeyLease, failure: Failure) -> Failure {
        match failure {
            Failure::AccessDenied(detail) => {
                let check = tokio::time::timeout(
                    self.probe_timeout,
                    self.upstreams.probe(call.provider, &key.secret),
                )
                .await;
                match check {
                    Ok(Err(Failure::KeyRejected(_) | Failure::AccessDenied(_))) => {
                        Failure::KeyRejected(detail)
                    }
                    _ => Failure::NoAccess(detail),
                }
            }
            Failure::RateLimited { detail, .. }
                if key
                    .token_limit
                    .is_some_and(|limit| at_least_tokens(call.body.len()) > limit) =>
            {
                Failure::Unfit(UpstreamDetail {
                    message: format!(
                        "the request is at least {} tokens, more than the key's whole per-minute \
                         limit of {} tokens; it can never be served by that key (upstream said: {})",
                        at_least_tokens(call.body.len()),
                        key.token_limit.unwrap_or_default(),
                        detail.message
                    ),
                    ..detail
                })
            }
            other => other,
        }
    }

    /// Runs `call` through the failover loop, reading each 2xx attempt with
    /// `read` (inside the attempt, so a malformed answer still moves on to
    /// the next key). On failure the tracker is finished here; on success it
    /// comes back for the caller to finish when the client has its answer.
    async fn run<T, F, Fut>(
        &self,
        call: &UpstreamCall,
        log: &RequestLog,
        read: F,
    ) -> Result<(Answered<T>, RequestTracker), ApiError>
    where
        F: Fn(reqwest::Response) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let pool = self.pools.get(call.provider).ok_or_else(|| {
            ApiError::unavailable(format!("provider {} is not configured", call.provider))
        })?;
        log.target(call.provider, call.model.as_deref());
        let mut tracker = RequestTracker::start(pool);
        let session = self.affinity.session(
            call.provider,
            call.model.as_deref(),
            call.session_header.as_ref(),
            &call.body,
            call.session_parts.as_ref(),
        );
        let scope = session.and_then(|session| self.affinity.scope_of(&session));
        let read = &read;
        let upstreams = &self.upstreams;
        let attempt = |key: KeyLease| async move {
            let response = match upstreams.send(call, &key).await {
                Ok(response) => response,
                Err(failure) => return Err(self.judge(call, &key, failure).await),
            };
            // Every answer's rate-limit windows feed the headroom strategy.
            let limits = rate_limits(call.provider, response.headers(), SystemTime::now());
            if !limits.is_empty() {
                pool.observe(&key.id, limits);
            }
            read(response).await
        };
        let model = call.model.as_ref();
        let result = match &call.bound {
            Some(bound) => {
                with_bound_key(
                    pool,
                    self.retry,
                    &bound.key,
                    model,
                    &mut tracker,
                    log,
                    attempt,
                )
                .await
            }
            None => {
                with_failover(
                    pool,
                    self.retry,
                    model,
                    scope.as_deref(),
                    &mut tracker,
                    log,
                    attempt,
                )
                .await
            }
        };
        match result {
            Ok(answered) => {
                // Bound (or rebound, when its scope could not serve) to
                // the cache this answer used.
                if let Some(session) = session {
                    self.affinity.bind(&session, answered.key.scope.clone());
                }
                Ok((answered, tracker))
            }
            Err(error) => {
                tracker.finish(false);
                let names_the_key = matches!(
                    error,
                    GatewayError::BoundKeyCooling { .. } | GatewayError::BoundKeyGone { .. }
                );
                let mut error = ApiError::from(error);
                if let (true, Some(bound)) = (names_the_key, &call.bound) {
                    error.message = format!("{} {}", bound.id, error.message);
                }
                Err(error)
            }
        }
    }
}
