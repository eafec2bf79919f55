//! The HTTP surface: `router(state)` assembles every route with its layers,
//! so tests can drive it with `oneshot` or over a real socket. A handler
//! parses its input, calls the gateway (or the pool, for admin routes) once
//! and renders the answer.
//!
//! - `chat`: `POST /api/chat`, the Node backend's route.
//! - `messages`: `POST /v1/messages`, Anthropic's API, passed through.
//! - `completions`: `POST /v1/chat/completions`, OpenAI's API (a `claude-`
//!   model is translated to Anthropic).
//! - `embeddings`: `POST /v1/embeddings`, OpenAI's, passed through.
//! - `count_tokens`: `POST /v1/messages/count_tokens`, Anthropic's.
//! - `responses`: OpenAI's Responses API, created and stored responses.
//! - `batches`, `files`: Anthropic's and OpenAI's batches and OpenAI's
//!   files, passed through (`resource_calls`) with the key that made them.
//! - `bindings`: resources only their creating key can see, found and
//!   recorded for the routes that name them.
//! - `unmodelled`: the 404 for every other path under `/v1/`.
//! - `sdk_fields`: the few fields of an SDK body keygate reads.
//! - `stream_usage`: asking an OpenAI stream for usage, by splicing the body.
//! - `search`: `POST`/`GET /api/search`, web search across the search pools.
//! - `v1_models`, `models`: model lists for the SDKs and for people.
//! - `health`: `GET /health`; `metrics`: `GET /metrics` (Prometheus).
//! - `dashboard`: `GET /dashboard`, the operator's page (public; the data it
//!   shows comes from the admin routes).
//! - `request_log`: the layer that starts each proxied request's ledger row.
//! - `guard`: checks that may answer a request before its route runs;
//!   `browser_guard` (Host, body type and size) and `cors`.
//! - `keypool`: stats, status and reset of the pools (admin).
//! - `keys`, `key_views`: live key management (admin) and its answers.
//! - `usage`, `usage_views`: the usage ledger's totals and requests
//!   (admin) and their answers.
//! - `alerts`: the open alert conditions and a test message (admin).
//! - `cors`, `browser_guard`: what web pages may read, and what they may
//!   not send (untyped or non-JSON bodies, foreign `Host` names).

pub mod alerts;
pub mod batches;
mod bindings;
pub mod browser_guard;
pub mod chat;
pub mod completions;
mod cors;
pub mod count_tokens;
pub mod dashboard;
pub mod embeddings;
pub mod files;
mod guard;
pub mod health;
pub mod key_views;
pub mod keypool;
pub mod keys;
pub mod messages;
pub mod metrics;
pub mod models;
pub mod request_log;
mod resource_calls;
pub mod responses;
mod sdk_fields;
pub mod search;
mod stream_usage;
mod unmodelled;
pub mod usage;
pub mod usage_views;
pub mod v1_models;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request, header};
use axum::middleware;
use axum::routing::{get, post};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;

use self::browser_guard::{body_refusal_response, host_refusal};
use self::guard::GuardLayer;
use crate::app_state::AppState;
use crate::auth::{client_key_refusal, require_admin};
use crate::domain::ProviderKind;
use crate::error::ApiError;
use crate::keypool::KeyPoolHandle;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(state: AppState) -> Router {
    let admin = Router::new()
        .route("/api/keypool/stats", get(keypool::pool_stats))
        .route("/api/keypool/{provider}/status", get(keypool::pool_status))
        .route("/api/keypool/{provider}/reset", post(keypool::reset_pool))
        .route(
            "/api/keypool/{provider}/keys",
            post(keys::create_key).get(keys::list_keys),
        )
        .route(
            "/api/keypool/{provider}/keys/{id}",
            axum::routing::patch(keys::update_key).delete(keys::delete_key),
        )
        .route("/api/keypool/{provider}/test", post(keys::test_keys))
        .route("/api/usage", get(usage::usage_totals))
        .route("/api/usage/requests", get(usage::usage_requests))
        .route("/api/alerts", get(alerts::list_alerts))
        .route("/api/alerts/test", post(alerts::test_alerts))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_admin));

    let trace = TraceLayer::new_for_http()
        .make_span_with(|request: &Request<_>| {
            let request_id = request
                .headers()
                .get(&REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            // The path only: query strings are the client's business.
            tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id)
        })
        .on_request(())
        // ApiError logs every error answer once, with its reason; the access
        // log line is for answers that are not errors.
        .on_response(
            |response: &axum::http::Response<_>, latency: Duration, _: &tracing::Span| {
                if response.status().as_u16() < 400 {
                    tracing::info!(status = response.status().as_u16(), latency_ms = latency.as_millis() as u64, "finished processing request");
                }
            },
        )
        .on_failure(());

    // The proxy routes; with GATEWAY_API_KEYS set, clients must authenticate.
    let proxy = Router::new()
        .route("/api/chat", post(chat::chat))
        .route("/v1/messages", post(messages::create_message))
        .route(
            "/v1/messages/count_tokens",
            post(count_tokens::count_tokens),
        )
        .route("/v1/chat/completions", post(completions::create_completion))
        .route("/v1/embeddings", post(embeddings::create_embedding))
        .route("/v1/responses", post(responses::create_response))
        .route(
            "/v1/responses/{id}",
            get(responses::get_response).delete(responses::delete_response),
        )
        .route(
            "/v1/responses/{id}/cancel",
            post(responses::cancel_response),
        )
        .route(
            "/v1/messages/batches",
            post(batches::create_message_batch).get(batches::list_message_batches),
        )
        .route(
            "/v1/messages/batches/{id}",
            get(batches::message_batch).delete(batches::message_batch),
        )
        .route(
            "/v1/messages/batches/{id}/results",
            get(batches::message_batch_results),
        )
        .route(
            "/v1/messages/batches/{id}/cancel",
            post(batches::cancel_message_batch),
        )
        .route(
            "/v1/batches",
            post(batches::create_batch).get(batches::list_batches),
        )
        .route("/v1/batches/{id}", get(batches::batch))
        .route("/v1/batches/{id}/cancel", post(batches::cancel_batch))
        .route("/v1/files", post(files::upload_file).get(files::list_files))
        .route("/v1/files/{id}", get(files::file).delete(files::file))
        .route("/v1/files/{id}/content", get(files::file_content))
        .route("/v1/{*rest}", axum::routing::any(unmodelled::not_modelled))
        .route(
            "/api/search",
            post(search::search_post).get(search::search_get),
        )
        .route("/v1/models", get(v1_models::list_models));
    // Without GATEWAY_API_KEYS the check would only pass every request on;
    // leave it out of the request path.
    let proxy = if state.client_keys.is_empty() {
        proxy
    } else {
        let keys = state.client_keys.clone();
        proxy.route_layer(GuardLayer::new(move |request| {
            client_key_refusal(&keys, request)
        }))
    };

    let router = Router::new()
        .merge(proxy)
        .route("/api/models", get(models::list_models))
        .route("/health", get(health::health))
        .route("/metrics", get(metrics::metrics))
        .route("/dashboard", get(dashboard::dashboard_page))
        .route("/dashboard/", get(dashboard::dashboard_page))
        .route("/dashboard/{file}", get(dashboard::dashboard_asset))
        .merge(admin)
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request_error",
                "method not allowed on this route",
            )
        })
        .layer(DefaultBodyLimit::max(state.body_limit))
        // Inside CORS, so a page CORS admits can read why it was refused.
        .layer(GuardLayer::new({
            let origins = state.cors_origins.clone();
            let limit = state.body_limit;
            move |request| body_refusal_response(&origins, limit, request)
        }))
        .layer(cors::cors_layer(state.cors_origins.clone()));
    // Outside CORS: a foreign Host gets no answer but the 421, preflights
    // included.
    let router = match state.allowed_hosts.clone() {
        Some(hosts) => router.layer(GuardLayer::new(move |request| {
            host_refusal(&hosts, request)
        })),
        None => router,
    };
    // Outside every guard, so a refused request is recorded too; inside
    // the request id, so its row carries the id the client was given.
    let router = router.layer(request_log::RequestLogLayer::new(
        state.observer.clone(),
        state.client_keys.clone(),
    ));
    router
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(trace)
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            HeaderName::from_static("x-api-key"),
            header::COOKIE,
        ]))
        .with_state(state)
}

/// Whether `path` is an admin route's (all under `/api/keypool`,
/// `/api/usage` and `/api/alerts`); CORS admits only listed origins there.
pub(crate) fn is_admin_path(path: &str) -> bool {
    ["/api/keypool", "/api/usage", "/api/alerts"]
        .iter()
        .any(|root| {
            path.strip_prefix(root)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
}

/// The pool named in a route's path; an unknown provider is 404 there.
pub(crate) fn pool_for<'a>(
    state: &'a AppState,
    provider: &str,
) -> Result<(ProviderKind, &'a KeyPoolHandle), ApiError> {
    let kind: ProviderKind = provider
        .parse()
        .map_err(|e| ApiError::not_found(format!("{e}")))?;
    let pool = state
        .pools
        .get(kind)
        .ok_or_else(|| ApiError::not_found(format!("provider {kind} is not configured")))?;
    Ok((kind, pool))
}
