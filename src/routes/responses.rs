//! OpenAI's Responses API: `POST /v1/responses` (streamed or not) from the
//! OpenAI pool with the client's body passed through, and the stored
//! response's own routes (`GET`/`DELETE /v1/responses/{id}`, `POST
//! /v1/responses/{id}/cancel`). A stored response is visible only to the
//! key that created it, so its id is recorded with that key, and every
//! later call naming it (those routes, or `previous_response_id`) goes to
//! that key alone (`routes::bindings`). Errors come back in OpenAI's shape.

use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;

use super::bindings::{AnswerIds, bound_to, checked_id, forget, remember};
use super::resource_calls::{ResourceCall, query_of};
use crate::app_state::AppState;
use crate::domain::{Frame, KeyId, ProviderKind, Reading, ResourceKind, UpstreamDetail};
use crate::error::{ApiError, Dialect, answer_in};
use crate::extract::read_bytes;
use crate::gateway::relay::Render;
use crate::gateway::render::json_response;
use crate::gateway::render::passthrough::Passthrough;
use crate::observe::RequestLog;
use crate::providers::{Endpoint, UpstreamCall};
use crate::routes::sdk_fields::SdkFields;

const OPENAI: ProviderKind = ProviderKind::OpenAI;

pub async fn create_response(
    State(state): State<AppState>,
    log: RequestLog,
    body: Body,
) -> Response {
    answer_in(Dialect::OpenAI, create(&state, &log, body).await)
}

async fn create(state: &AppState, log: &RequestLog, body: Body) -> Result<Response, ApiError> {
    let bytes = read_bytes(body, state.body_limit).await?;
    let fields = SdkFields::parse(&bytes)?;
    let model = fields.model()?;
    fields.check_common()?;
    let stream = fields.stream()?;
    let stores = fields.stores()?;
    let bound = match fields.previous_response_id()? {
        Some(previous) => Some(bound_to(state, OPENAI, &previous).await?),
        None => None,
    };
    let call = UpstreamCall {
        provider: OPENAI,
        endpoint: Endpoint::Responses,
        body: bytes,
        headers: HeaderMap::new(),
        model: Some(model.into()),
        session_header: None,
        session_parts: None,
        bound,
    };
    if stream {
        let noted = Noted::default();
        let response = state
            .gateway
            .stream(&call, log, |key, _| NotingId {
                inner: Passthrough::openai_responses(),
                noted: noted.clone(),
                key: key.clone(),
            })
            .await?;
        // `response.created` comes before any content, so the gate has
        // already passed it to the renderer: the id is known by now.
        if let (true, Some((id, key))) = (stores, noted.take()) {
            remember(state, OPENAI, ResourceKind::Response, &id, &key, None).await;
        }
        return Ok(response);
    }
    let answer = state.gateway.json(&call, log).await?;
    if let (true, Some(id)) = (stores, AnswerIds::of(&answer.value).id) {
        remember(
            state,
            OPENAI,
            ResourceKind::Response,
            &id,
            &answer.key,
            None,
        )
        .await;
    }
    Ok(json_response(answer))
}

/// The response id a stream announced and the key that answered it.
#[derive(Clone, Default)]
struct Noted(Arc<Mutex<Option<(String, KeyId)>>>);

impl Noted {
    fn take(&self) -> Option<(String, KeyId)> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// A Responses stream passed through as it came, noting its id.
struct NotingId {
    inner: Passthrough,
    noted: Noted,
    key: KeyId,
}

impl Render for NotingId {
    fn frame(&mut self, frame: &Frame, reading: &Reading, out: &mut Vec<u8>) {
        if let Some(id) = &reading.message_id {
            self.noted
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_or_insert_with(|| (id.clone(), self.key.clone()));
        }
        self.inner.frame(frame, reading, out);
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        self.inner.finish(out);
    }

    fn fail(&mut self, error: &UpstreamDetail, out: &mut Vec<u8>) {
        self.inner.fail(error, out);
    }
}

pub async fn get_response(
    State(state): State<AppState>,
    log: RequestLog,
    Path(id): Path<String>,
    uri: axum::http::Uri,
) -> Response {
    on_stored(&state, &log, Method::GET, &id, "", &query_of(&uri)).await
}

pub async fn delete_response(
    State(state): State<AppState>,
    log: RequestLog,
    Path(id): Path<String>,
) -> Response {
    let response = on_stored(&state, &log, Method::DELETE, &id, "", "").await;
    if response.status().is_success() {
        forget(&state, OPENAI, &id).await;
    }
    response
}

pub async fn cancel_response(
    State(state): State<AppState>,
    log: RequestLog,
    Path(id): Path<String>,
) -> Response {
    on_stored(&state, &log, Method::POST, &id, "/cancel", "").await
}

/// A call on stored response `id`, through the key that created it.
async fn on_stored(
    state: &AppState,
    log: &RequestLog,
    method: Method,
    id: &str,
    suffix: &str,
    query: &str,
) -> Response {
    let answer = async {
        let id = checked_id(id)?;
        let call = ResourceCall {
            provider: OPENAI,
            method,
            path: format!("/v1/responses/{id}{suffix}{query}"),
            bound: Some(bound_to(state, OPENAI, id).await?),
        };
        Ok::<_, ApiError>(json_response(
            call.send(state, log, &HeaderMap::new()).await?,
        ))
    };
    answer_in(Dialect::OpenAI, answer.await)
}
