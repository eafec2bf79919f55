//! `POST /v1/chat/completions`: OpenAI's Chat Completions API for the
//! official SDKs. Served from the OpenAI pool with the client's body passed
//! through, except that streams always ask for usage (and drop that chunk
//! again if the client did not ask). A `claude-` model is translated to
//! Anthropic's API and served from the Anthropic pool. Errors come back in
//! OpenAI's shape.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::app_state::AppState;
use crate::domain::ProviderKind;
use crate::error::{ApiError, Dialect};
use crate::extract::{parse_json, read_bytes};
use crate::gateway::render::json_response;
use crate::gateway::render::passthrough::Passthrough;
use crate::providers::UpstreamCall;
use crate::routes::sdk_fields::SdkFields;
use crate::translate::{AnthropicAsOpenAi, Translated, completion_from_reply, to_anthropic};

pub async fn create_completion(State(state): State<AppState>, body: Body) -> Response {
    match serve(&state, body).await {
        Ok(response) => response,
        Err(error) => error.into_response_in(Dialect::OpenAI),
    }
}

async fn serve(state: &AppState, body: Body) -> Result<Response, ApiError> {
    let bytes = read_bytes(body, state.body_limit).await?;
    let fields = SdkFields::parse(&bytes)?;
    let model = fields.model()?.to_string();
    fields.check_messages()?;
    fields.check_common()?;
    let stream = fields.stream()?;
    if model.starts_with("claude-") {
        // Translation needs the whole request; only this path builds it.
        let request: Map<String, Value> = parse_json(&bytes)?;
        return serve_from_anthropic(state, &request).await;
    }
    let mut call = UpstreamCall {
        provider: ProviderKind::OpenAI,
        body: bytes,
        headers: HeaderMap::new(),
        model: Some(model.as_str().into()),
    };
    if !stream {
        return Ok(json_response(state.gateway.json(&call).await?));
    }
    let client_asked_for_usage = fields.include_usage();
    if !client_asked_for_usage {
        let mut request: Map<String, Value> = parse_json(&call.body)?;
        let options = request.entry("stream_options").or_insert_with(|| json!({}));
        if !options.is_object() {
            *options = json!({});
        }
        options["include_usage"] = json!(true);
        call.body = Bytes::from(Value::Object(request).to_string());
    }
    state
        .gateway
        .stream(&call, |_, _| Passthrough::openai(client_asked_for_usage))
        .await
}

async fn serve_from_anthropic(
    state: &AppState,
    request: &Map<String, Value>,
) -> Result<Response, ApiError> {
    let Translated {
        request,
        include_usage,
    } = to_anthropic(request)?;
    let call = UpstreamCall::chat(ProviderKind::Anthropic, &request);
    if request.stream {
        let render = AnthropicAsOpenAi::new(request.model, include_usage);
        return state.gateway.stream(&call, |_, _| render).await;
    }
    let reply = state.gateway.chat(&call).await?;
    let body = completion_from_reply(&reply.value);
    Ok((reply.headers, Json(body)).into_response())
}
