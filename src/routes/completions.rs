//! `POST /v1/chat/completions`: OpenAI's Chat Completions API for the
//! official SDKs. Served from the OpenAI pool with the client's body passed
//! through, except that streams always ask for usage (`stream_usage`
//! splices that into the body, and the chunk is dropped again if the client
//! did not ask). A `claude-` model is translated to Anthropic's API and
//! served from the Anthropic pool, within the limits of `crate::limits`.
//! Errors come back in OpenAI's shape.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::affinity::session_header;
use crate::app_state::AppState;
use crate::domain::ProviderKind;
use crate::error::{ApiError, Dialect, answer_in};
use crate::extract::read_bytes;
use crate::gateway::render::json_response;
use crate::gateway::render::passthrough::Passthrough;
use crate::limits::check_shape;
use crate::observe::RequestLog;
use crate::providers::{Endpoint, UpstreamCall};
use crate::routes::sdk_fields::SdkFields;
use crate::routes::stream_usage::with_usage_requested;
use crate::translate::{AnthropicAsOpenAi, Translated, completion_from_reply, to_anthropic};

pub async fn create_completion(
    State(state): State<AppState>,
    log: RequestLog,
    headers: HeaderMap,
    body: Body,
) -> Response {
    answer_in(Dialect::OpenAI, serve(&state, &log, &headers, body).await)
}

async fn serve(
    state: &AppState,
    log: &RequestLog,
    client_headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_bytes(body, state.body_limit).await?;
    let fields = SdkFields::parse(&bytes)?;
    let model = fields.model()?;
    fields.check_messages()?;
    fields.check_common()?;
    let stream = fields.stream()?;
    let client_asked_for_usage = fields.include_usage();
    if model.starts_with("claude-") {
        return serve_from_anthropic(state, log, client_headers, bytes).await;
    }
    let session_parts = Some(fields.session_parts(&bytes));
    let mut call = UpstreamCall {
        endpoint: Endpoint::Chat,
        provider: ProviderKind::OpenAI,
        body: bytes,
        headers: HeaderMap::new(),
        model: Some(model.into()),
        session_header: session_header(client_headers),
        session_parts,
        bound: None,
    };
    if !stream {
        return Ok(json_response(state.gateway.json(&call, log).await?));
    }
    if !client_asked_for_usage {
        call.body = with_usage_requested(&call.body)?;
        // The parts' places were in the client's body, not this one.
        call.session_parts = None;
    }
    state
        .gateway
        .stream(&call, log, |_, _| {
            Passthrough::openai(client_asked_for_usage)
        })
        .await
}

async fn serve_from_anthropic(
    state: &AppState,
    log: &RequestLog,
    client_headers: &HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let (call, model, stream, include_usage) = {
        let _turn = state.conversions.admit(bytes.len()).await?;
        check_shape(&bytes)?;
        let Translated {
            request,
            include_usage,
        } = to_anthropic(&bytes)?;
        // The texts are copies now; the client's bytes can go before the
        // upstream body is written.
        drop(bytes);
        let mut call = UpstreamCall::chat(ProviderKind::Anthropic, &request);
        call.session_header = session_header(client_headers);
        (call, request.model, request.stream, include_usage)
    };
    if stream {
        let render = AnthropicAsOpenAi::new(model, include_usage);
        return state.gateway.stream(&call, log, |_, _| render).await;
    }
    let reply = state.gateway.chat(&call, log).await?;
    let body = completion_from_reply(&reply.value);
    Ok((reply.headers, Json(body)).into_response())
}
