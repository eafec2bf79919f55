//! Batches, passed through: Anthropic's message batches
//! (`/v1/messages/batches…`) from the Anthropic pool and OpenAI's batches
//! (`/v1/batches…`) from the OpenAI pool. A batch is created with a pool
//! key (an OpenAI batch with the key that uploaded its input file), and
//! its id is recorded with that key; polling, results, cancelling and
//! deleting go to that key alone, as do the output and error files an
//! OpenAI batch writes. Listing uses a pool key and shows that key's
//! batches only. Anthropic's `results_url` is made relative, so the SDKs
//! fetch results through keygate (with the creating key), not from the
//! provider directly.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use bytes::Bytes;
use serde_json::Value;

use super::bindings::{AnswerIds, bound_to, checked_id, forget, remember};
use super::resource_calls::{ResourceCall, query_of};
use crate::app_state::AppState;
use crate::domain::{ProviderKind, ResourceKind};
use crate::error::{ApiError, Dialect, answer_in};
use crate::extract::read_bytes;
use crate::gateway::Proxied;
use crate::gateway::render::json_response;
use crate::observe::RequestLog;
use crate::routes::sdk_fields::SdkFields;

const ANTHROPIC: ProviderKind = ProviderKind::Anthropic;
const OPENAI: ProviderKind = ProviderKind::OpenAI;

pub async fn create_message_batch(
    State(state): State<AppState>,
    log: RequestLog,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        let call = ResourceCall {
            provider: ANTHROPIC,
            method: Method::POST,
            path: "/v1/messages/batches".into(),
            bound: None,
        };
        let answer = call.send_client_body(&state, &log, &headers, body).await?;
        if let Some(id) = AnswerIds::of(&answer.value).id {
            remember(
                &state,
                ANTHROPIC,
                ResourceKind::Batch,
                &id,
                &answer.key,
                None,
            )
            .await;
        }
        Ok(relative_results_urls(answer))
    };
    answer_in(Dialect::Anthropic, result.await)
}

pub async fn list_message_batches(
    State(state): State<AppState>,
    log: RequestLog,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let call = ResourceCall {
        provider: ANTHROPIC,
        method: Method::GET,
        path: format!("/v1/messages/batches{}", query_of(&uri)),
        bound: None,
    };
    let result = call
        .send(&state, &log, &headers)
        .await
        .map(relative_results_urls);
    answer_in(Dialect::Anthropic, result)
}

/// `GET` or `DELETE /v1/messages/batches/{id}`.
pub async fn message_batch(
    State(state): State<AppState>,
    log: RequestLog,
    method: Method,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let deleting = method == Method::DELETE;
    let result = on_message_batch(&state, &log, method, &headers, &id, "").await;
    if deleting && result.is_ok() {
        forget(&state, ANTHROPIC, &id).await;
    }
    answer_in(Dialect::Anthropic, result.map(relative_results_urls))
}

/// `GET …/{id}/results` (JSONL, passed as it came).
pub async fn message_batch_results(
    State(state): State<AppState>,
    log: RequestLog,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let result = on_message_batch(&state, &log, Method::GET, &headers, &id, "/results").await;
    answer_in(Dialect::Anthropic, result.map(json_response))
}

pub async fn cancel_message_batch(
    State(state): State<AppState>,
    log: RequestLog,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let result = on_message_batch(&state, &log, Method::POST, &headers, &id, "/cancel").await;
    answer_in(Dialect::Anthropic, result.map(relative_results_urls))
}

async fn on_message_batch(
    state: &AppState,
    log: &RequestLog,
    method: Method,
    headers: &HeaderMap,
    id: &str,
    suffix: &str,
) -> Result<Proxied<Bytes>, ApiError> {
    let id = checked_id(id)?;
    let call = ResourceCall {
        provider: ANTHROPIC,
        method,
        path: format!("/v1/messages/batches/{id}{suffix}"),
        bound: Some(bound_to(state, ANTHROPIC, id).await?),
    };
    call.send(state, log, headers).await
}

/// The answer with every `results_url` made relative to keygate.
fn relative_results_urls(mut answer: Proxied<Bytes>) -> Response {
    if let Ok(mut body) = serde_json::from_slice::<Value>(&answer.value) {
        relative_results_url(&mut body);
        if let Some(batches) = body.get_mut("data").and_then(Value::as_array_mut) {
            batches.iter_mut().for_each(relative_results_url);
        }
        answer.value = Bytes::from(body.to_string());
    }
    json_response(answer)
}

/// `https://api.anthropic.com/v1/messages/batches/…/results` becomes
/// `/v1/messages/batches/…/results`.
fn relative_results_url(batch: &mut Value) {
    let Some(url) = batch.get_mut("results_url") else {
        return;
    };
    let relative = url
        .as_str()
        .and_then(|text| text.find("/v1/").map(|at| text[at..].to_string()));
    if let Some(relative) = relative {
        *url = Value::String(relative);
    }
}

pub async fn create_batch(
    State(state): State<AppState>,
    log: RequestLog,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        let bytes = read_bytes(body, state.body_limit).await?;
        let input = input_file_id(&bytes)?;
        let call = ResourceCall {
            provider: OPENAI,
            method: Method::POST,
            path: "/v1/batches".into(),
            bound: Some(bound_to(&state, OPENAI, &input).await?),
        };
        let answer = call.send_body(&state, &log, &headers, bytes).await?;
        remember_batch_files(&state, &answer).await;
        Ok(json_response(answer))
    };
    answer_in(Dialect::OpenAI, result.await)
}

/// `input_file_id`: the uploaded file the batch reads, which decides its
/// key.
fn input_file_id(body: &[u8]) -> Result<String, ApiError> {
    SdkFields::parse(body)?;
    #[derive(serde::Deserialize)]
    struct Input {
        input_file_id: Option<String>,
    }
    serde_json::from_slice::<Input>(body)
        .ok()
        .and_then(|input| input.input_file_id)
        .ok_or_else(|| ApiError::bad_request("input_file_id: must be the id of an uploaded file"))
}

pub async fn list_batches(
    State(state): State<AppState>,
    log: RequestLog,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let call = ResourceCall {
        provider: OPENAI,
        method: Method::GET,
        path: format!("/v1/batches{}", query_of(&uri)),
        bound: None,
    };
    answer_in(
        Dialect::OpenAI,
        call.send(&state, &log, &headers).await.map(json_response),
    )
}

pub async fn batch(
    State(state): State<AppState>,
    log: RequestLog,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    answer_in(
        Dialect::OpenAI,
        on_batch(&state, &log, Method::GET, &headers, &id, "").await,
    )
}

pub async fn cancel_batch(
    State(state): State<AppState>,
    log: RequestLog,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    answer_in(
        Dialect::OpenAI,
        on_batch(&state, &log, Method::POST, &headers, &id, "/cancel").await,
    )
}

async fn on_batch(
    state: &AppState,
    log: &RequestLog,
    method: Method,
    headers: &HeaderMap,
    id: &str,
    suffix: &str,
) -> Result<Response, ApiError> {
    let id = checked_id(id)?;
    let call = ResourceCall {
        provider: OPENAI,
        method,
        path: format!("/v1/batches/{id}{suffix}"),
        bound: Some(bound_to(state, OPENAI, id).await?),
    };
    let answer = call.send(state, log, headers).await?;
    remember_batch_files(state, &answer).await;
    Ok(json_response(answer))
}

/// A batch and the files it wrote belong to the key that answered.
async fn remember_batch_files(state: &AppState, answer: &Proxied<Bytes>) {
    let ids = AnswerIds::of(&answer.value);
    if let Some(id) = &ids.id {
        remember(state, OPENAI, ResourceKind::Batch, id, &answer.key, None).await;
    }
    for file in [&ids.output_file_id, &ids.error_file_id]
        .into_iter()
        .flatten()
    {
        remember(state, OPENAI, ResourceKind::File, file, &answer.key, None).await;
    }
}
