//! The fake's routes: each records the call, then plays the key's script or
//! the route's default answer.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::canned::Canned;
use super::chaos::{Dialect, Play};
use super::prompt_cache::CacheUse;
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
    MessageBatchCreate,
    /// Listing, reading, results, cancelling and deleting message batches.
    MessageBatch,
    FileUpload,
    /// Listing, reading, content and deleting files.
    File,
    BatchCreate,
    /// Listing, reading and cancelling OpenAI batches.
    Batch,
}

impl Route {
    fn dialect(self) -> Dialect {
        match self {
            Route::Messages
            | Route::Models
            | Route::CountTokens
            | Route::MessageBatchCreate
            | Route::MessageBatch => Dialect::Anthropic,
            _ => Dialect::OpenAi,
        }
    }
}

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/messages", post(on(Route::Messages)))
        .route("/v1/messages/count_tokens", post(on(Route::CountTokens)))
        .route(
            "/v1/messages/batches",
            post(on(Route::MessageBatchCreate)).get(on(Route::MessageBatch)),
        )
        .route(
            "/v1/messages/batches/{id}",
            get(on(Route::MessageBatch)).delete(on(Route::MessageBatch)),
        )
        .route(
            "/v1/messages/batches/{id}/results",
            get(on(Route::MessageBatch)),
        )
        .route(
            "/v1/messages/batches/{id}/cancel",
            post(on(Route::MessageBatch)),
        )
        .route("/v1/chat/completions", post(on(Route::ChatCompletions)))
        .route("/v1/embeddings", post(on(Route::Embeddings)))
        .route("/v1/responses", post(on(Route::Responses)))
        .route(
            "/v1/responses/{id}",
            get(on(Route::StoredResponse)).delete(on(Route::StoredResponse)),
        )
        .route("/v1/responses/{id}/cancel", post(on(Route::StoredResponse)))
        .route("/v1/files", post(upload).get(on(Route::File)))
        .route(
            "/v1/files/{id}",
            get(on(Route::File)).delete(on(Route::File)),
        )
        .route("/v1/files/{id}/content", get(on(Route::File)))
        .route(
            "/v1/batches",
            post(on(Route::BatchCreate)).get(on(Route::Batch)),
        )
        .route("/v1/batches/{id}", get(on(Route::Batch)))
        .route("/v1/batches/{id}/cancel", post(on(Route::Batch)))
        .route("/v1/models", get(on(Route::Models)))
        .with_state(shared)
}

/// The handler of `route`: every route records its call and answers the
/// same way, only the default answer differs.
fn on(
    route: Route,
) -> impl Fn(State<Arc<Shared>>, Method, Uri, HeaderMap, Bytes) -> BoxFuture<'static, Response>
+ Clone
+ Send
+ Sync
+ 'static {
    move |State(shared), method, uri, headers, body| {
        Box::pin(async move { answer(route, &shared, &method, &uri, headers, &body, None).await })
    }
}

/// A file upload, read from its multipart form.
struct Upload {
    filename: String,
    purpose: String,
    content: Vec<u8>,
}

/// `POST /v1/files`: a multipart form with `purpose` and `file`.
async fn upload(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    mut form: Multipart,
) -> Response {
    let mut upload = Upload {
        filename: String::new(),
        purpose: String::new(),
        content: Vec::new(),
    };
    while let Ok(Some(field)) = form.next_field().await {
        match field.name() {
            Some("purpose") => upload.purpose = field.text().await.unwrap_or_default(),
            Some("file") => {
                upload.filename = field.file_name().unwrap_or("upload").to_string();
                upload.content = field.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
            }
            _ => {}
        }
    }
    answer(
        Route::FileUpload,
        &shared,
        &method,
        &uri,
        headers,
        &[],
        Some(upload),
    )
    .await
}

async fn answer(
    route: Route,
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: HeaderMap,
    body: &[u8],
    upload: Option<Upload>,
) -> Response {
    let request: Option<Value> = match &upload {
        // Recorded as what was sent, without the file's bytes.
        Some(upload) => Some(
            json!({"purpose": upload.purpose, "filename": upload.filename,
                                    "bytes": upload.content.len()}),
        ),
        None => serde_json::from_slice(body).ok(),
    };
    let base = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .map(|host| format!("http://{host}"))
        .unwrap_or_default();
    let key = key_of(&headers);
    let call = Call {
        key: key.clone(),
        path: uri.path().to_string(),
        headers,
        body: request.clone().unwrap_or(Value::Null),
        received: Instant::now(),
        fault: None,
    };
    let dialect = route.dialect();
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
            let cache = match (route, &request) {
                (Route::Messages | Route::ChatCompletions, Some(request)) => shared
                    .script()
                    .cache
                    .use_prefix(&key, request, Instant::now()),
                _ => CacheUse::default(),
            };
            let call = Asked {
                key: &key,
                method,
                path: uri.path(),
                base: &base,
                request: request.as_ref(),
                upload,
            };
            default_answer(route, call, shared, cache).respond().await
        }
    }
}

/// What a call asked, for its route's default answer.
struct Asked<'a> {
    key: &'a str,
    method: &'a Method,
    path: &'a str,
    /// The fake's own URL, for links it hands out.
    base: &'a str,
    request: Option<&'a Value>,
    upload: Option<Upload>,
}

fn default_answer(route: Route, call: Asked<'_>, shared: &Shared, cache: CacheUse) -> Canned {
    let settings = &shared.settings;
    match (route, call.request) {
        (Route::Messages, Some(request)) => anthropic::default_answer(request, settings, cache),
        (Route::Messages | Route::CountTokens, None) => anthropic::bad_request(),
        (Route::CountTokens, Some(_)) => responses::token_count(),
        (Route::ChatCompletions, Some(request)) => openai::default_answer(request, settings, cache),
        (Route::ChatCompletions | Route::Embeddings | Route::Responses, None) => {
            openai::bad_request()
        }
        (Route::Embeddings, Some(request)) => responses::embeddings(request),
        (Route::Responses, Some(request)) => shared.stored().create_response(call.key, request),
        (Route::StoredResponse, _) => shared
            .stored()
            .on_response(call.key, call.method, call.path),
        (Route::Models, _) => anthropic::models_list(),
        (Route::MessageBatchCreate, Some(request)) => {
            shared.stored().create_message_batch(call.key, request)
        }
        (Route::MessageBatchCreate, None) => anthropic::bad_request(),
        (Route::MessageBatch, _) => {
            shared
                .stored()
                .on_message_batch(call.key, call.method, call.path, call.base)
        }
        (Route::FileUpload, _) => match call.upload {
            Some(upload) if !upload.content.is_empty() => shared.stored().create_file(
                call.key,
                &upload.filename,
                &upload.purpose,
                upload.content,
            ),
            _ => openai::bad_request(),
        },
        (Route::File, _) => shared.stored().on_file(call.key, call.method, call.path),
        (Route::BatchCreate, Some(request)) => shared.stored().create_batch(call.key, request),
        (Route::BatchCreate, None) => openai::bad_request(),
        (Route::Batch, _) => shared.stored().on_batch(call.key, call.path),
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
