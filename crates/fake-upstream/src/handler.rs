//! The fake's routes: each records the call, then plays the key's script or
//! the route's default answer.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::Value;

use super::canned::Canned;
use super::chaos::{Dialect, Play};
use super::{Call, Shared, anthropic, openai, responses};

#[derive(Clone, Copy, Debug)]
enum Route {
    Messages,
    ChatCompletions,
    Models,
    CountTokens,
    Embeddings,
    Responses,
    /// `GET`/`DELETE /v1/responses/{id}`, `POST /v1/responses/{id}/cancel`.
    StoredResponse,
}

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/messages", post(messages))
        .route("/v1/messages/count_tokens", post(count_tokens))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/responses", post(create_response))
        .route(
            "/v1/responses/{id}",
            get(stored_response).delete(stored_response),
        )
        .route("/v1/responses/{id}/cancel", post(stored_response))
        .route("/v1/models", get(models))
        .with_state(shared)
}

async fn count_tokens(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(Route::CountTokens, &shared, &method, &uri, headers, &body).await
}

async fn embeddings(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(Route::Embeddings, &shared, &method, &uri, headers, &body).await
}

async fn create_response(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(Route::Responses, &shared, &method, &uri, headers, &body).await
}

async fn stored_response(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(
        Route::StoredResponse,
        &shared,
        &method,
        &uri,
        headers,
        &body,
    )
    .await
}

async fn messages(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(Route::Messages, &shared, &method, &uri, headers, &body).await
}

async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(
        Route::ChatCompletions,
        &shared,
        &method,
        &uri,
        headers,
        &body,
    )
    .await
}

async fn models(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    answer(Route::Models, &shared, &method, &uri, headers, &[]).await
}

async fn answer(
    route: Route,
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: HeaderMap,
    body: &[u8],
) -> Response {
    let request: Option<Value> = serde_json::from_slice(body).ok();
    let call = Call {
        key: key_of(&headers),
        path: uri.path().to_string(),
        headers,
        body: request.clone().unwrap_or(Value::Null),
        received: Instant::now(),
        fault: None,
    };
    let dialect = match route {
        Route::ChatCompletions | Route::Embeddings | Route::Responses | Route::StoredResponse => {
            Dialect::OpenAi
        }
        Route::Messages | Route::Models | Route::CountTokens => Dialect::Anthropic,
    };
    let key = call.key.clone();
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
            let call = Asked {
                key: &key,
                method,
                path: uri.path(),
                request: request.as_ref(),
            };
            default_answer(route, &call, shared).respond().await
        }
    }
}

/// What a call asked, for its route's default answer.
struct Asked<'a> {
    key: &'a str,
    method: &'a Method,
    path: &'a str,
    request: Option<&'a Value>,
}

fn default_answer(route: Route, call: &Asked<'_>, shared: &Shared) -> Canned {
    let settings = &shared.settings;
    match (route, call.request) {
        (Route::Messages, Some(request)) => anthropic::default_answer(request, settings),
        (Route::Messages | Route::CountTokens, None) => anthropic::bad_request(),
        (Route::CountTokens, Some(_)) => responses::token_count(),
        (Route::ChatCompletions, Some(request)) => openai::default_answer(request, settings),
        (Route::ChatCompletions | Route::Embeddings | Route::Responses, None) => {
            openai::bad_request()
        }
        (Route::Embeddings, Some(request)) => responses::embeddings(request),
        (Route::Responses, Some(request)) => shared.stored().create_response(call.key, request),
        (Route::StoredResponse, _) => shared
            .stored()
            .on_response(call.key, call.method, call.path),
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
