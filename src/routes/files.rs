//! OpenAI's files, passed through from the OpenAI pool: an upload (a
//! multipart form, read whole within `MAX_BODY_BYTES`) goes with a pool
//! key and its id is recorded with that key, until the file's own
//! `expires_at` or 30 days; reading, downloading and deleting a file go
//! to that key alone. Listing uses a pool key and shows that key's files
//! only.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;

use super::bindings::{AnswerIds, bound_to, checked_id, forget, remember};
use super::resource_calls::{ResourceCall, query_of};
use crate::app_state::AppState;
use crate::domain::{ProviderKind, ResourceKind};
use crate::error::{ApiError, Dialect, answer_in};
use crate::gateway::render::json_response;
use crate::observe::RequestLog;

const OPENAI: ProviderKind = ProviderKind::OpenAI;

pub async fn upload_file(
    State(state): State<AppState>,
    log: RequestLog,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        let call = ResourceCall {
            provider: OPENAI,
            method: Method::POST,
            path: "/v1/files".into(),
            bound: None,
        };
        let answer = call.send_client_body(&state, &log, &headers, body).await?;
        let ids = AnswerIds::of(&answer.value);
        if let Some(id) = &ids.id {
            let expires_at_ms = ids.file_expiry_ms();
            remember(
                &state,
                OPENAI,
                ResourceKind::File,
                id,
                &answer.key,
                expires_at_ms,
            )
            .await;
        }
        Ok::<_, ApiError>(json_response(answer))
    };
    answer_in(Dialect::OpenAI, result.await)
}

pub async fn list_files(
    State(state): State<AppState>,
    log: RequestLog,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let call = ResourceCall {
        provider: OPENAI,
        method: Method::GET,
        path: format!("/v1/files{}", query_of(&uri)),
        bound: None,
    };
    answer_in(
        Dialect::OpenAI,
        call.send(&state, &log, &headers).await.map(json_response),
    )
}

/// `GET` or `DELETE /v1/files/{id}`.
pub async fn file(
    State(state): State<AppState>,
    log: RequestLog,
    method: Method,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let deleting = method == Method::DELETE;
    let response = on_file(&state, &log, method, &headers, &id, "").await;
    if deleting && response.status().is_success() {
        forget(&state, OPENAI, &id).await;
    }
    response
}

/// `GET /v1/files/{id}/content`: the bytes as they came.
pub async fn file_content(
    State(state): State<AppState>,
    log: RequestLog,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    on_file(&state, &log, Method::GET, &headers, &id, "/content").await
}

async fn on_file(
    state: &AppState,
    log: &RequestLog,
    method: Method,
    headers: &HeaderMap,
    id: &str,
    suffix: &str,
) -> Response {
    let result = async {
        let id = checked_id(id)?;
        let call = ResourceCall {
            provider: OPENAI,
            method,
            path: format!("/v1/files/{id}{suffix}"),
            bound: Some(bound_to(state, OPENAI, id).await?),
        };
        Ok::<_, ApiError>(json_response(call.send(state, log, headers).await?))
    };
    answer_in(Dialect::OpenAI, result.await)
}
