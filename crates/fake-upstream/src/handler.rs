//! The fake's routes: each records the call, then plays the key's script or
//! the route's default answer.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::Value;

use super::canned::Canned;
use super::chaos::{Dialect, Play};
use super::prompt_cache::CacheUse;
use super::{Call, Shared, anthropic, openai};

#[derive(Clone, Copy, Debug)]
enum Route {
    Messages,
    ChatCompletions,
    Models,
}

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/messages", post(messages))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/models", get(models))
        .with_state(shared)
}

async fn messages(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(Route::Messages, &shared, &uri, headers, &body).await
}

async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(Route::ChatCompletions, &shared, &uri, headers, &body).await
}

async fn models(State(shared): State<Arc<Shared>>, uri: Uri, headers: HeaderMap) -> Response {
    answer(Route::Models, &shared, &uri, headers, &[]).await
}

async fn answer(
    route: Route,
    shared: &Shared,
    uri: &Uri,
    headers: HeaderMap,
    body: &[u8],
) -> Response {
    let request: Option<Value> = serde_json::from_slice(body).ok();
    let key = key_of(&headers);
    let call = Call {
        key: key.clone(),
        path: uri.path().to_string(),
        headers,
        body: request.clone().unwrap_or(Value::Null),
        received: Instant::now(),
        fault: None,
    };
    let dialect = match route {
        Route::ChatCompletions => Dialect::OpenAi,
        Route::Messages | Route::Models => Dialect::Anthropic,
    };
    // The guard is a temporary of this statement, so it is gone before any await.
    let play = shared.script().answer(call, dialect);
    match play {
        Some(Play::Answer(canned)) => canned.respond().await,
        Some(Play::Reset) => {
            // Unwinding out of the handler ends hyper's connection task, so
            // the socket closes with no response at all: what a crashed or
            // reset upstream looks like. `resume_unwind` skips the panic hook,
            // so nothing is printed.
            std::panic::resume_unwind(Box::new("fake upstream: chaos connection reset"))
        }
        None => {
            let cache = match (route, &request) {
                (Route::Messages | Route::ChatCompletions, Some(request)) => shared
                    .script()
                    .cache
                    .use_prefix(&key, request, Instant::now()),
                _ => CacheUse::default(),
            };
            default_answer(route, request.as_ref(), shared, cache)
                .respond()
                .await
        }
    }
}

fn default_answer(
    route: Route,
    request: Option<&Value>,
    shared: &Shared,
    cache: CacheUse,
) -> Canned {
    let settings = &shared.settings;
    match (route, request) {
        (Route::Messages, Some(request)) => anthropic::default_answer(request, settings, cache),
        (Route::Messages, None) => anthropic::bad_request(),
        (Route::ChatCompletions, Some(request)) => openai::default_answer(request, settings, cache),
        (Route::ChatCompletions, None) => openai::bad_request(),
        (Route::Models, _) => anthropic::models_list(),
    }
}

/// Anthropic clients send `x-api-key`, OpenAI clients a bearer token.
fn key_of(headers: &HeaderMap) -> String {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    header("x-api-key")
        .or_else(|| header("authorization").and_then(|value| value.strip_prefix("Bearer ")))
        .unwrap_or_default()
        .to_string()
}
