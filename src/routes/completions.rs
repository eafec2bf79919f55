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

use crate::error::{ApiError, Dialect};
use crate::extract::{parse_json, read_bytes};
use crate::providers::{ProviderKind, UpstreamCall, parse_reply, read_body};
use crate::render::gateway_headers;
use crate::render::passthrough::Passthrough;
use crate::routes::proxy;
use crate::routes::sdk_fields::SdkFields;
use crate::state::AppState;
use crate::translate::{AnthropicAsOpenAi, completion_from_reply, to_anthropic};

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
        let answered = proxy::run_json(state, &call).await?;
        let (upstream_headers, body) = answered.value;
        return Ok(proxy::json_response(
            gateway_headers(upstream_headers, &answered.key, answered.attempts),
            body,
        ));
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
    proxy::stream_response(state, &call, |_, _| {
        Passthrough::openai(client_asked_for_usage)
    })
    .await
}

async fn serve_from_anthropic(
    state: &AppState,
    request: &Map<String, Value>,
) -> Result<Response, ApiError> {
    let translated = to_anthropic(request)?;
    let call = UpstreamCall {
        provider: ProviderKind::Anthropic,
        body: translated.body,
        headers: HeaderMap::new(),
        model: Some(translated.model.as_str().into()),
    };
    if translated.stream {
        let render = AnthropicAsOpenAi::new(translated.model, translated.include_usage);
        return proxy::stream_response(state, &call, |_, _| render).await;
    }
    let (answered, tracker) = proxy::run(state, &call, |response| async move {
        let (headers, body) = read_body(response).await?;
        Ok((headers, parse_reply(ProviderKind::Anthropic, &body)?))
    })
    .await?;
    tracker.finish(true);
    let (upstream_headers, reply) = answered.value;
    let headers = gateway_headers(upstream_headers, &answered.key, answered.attempts);
    Ok((headers, Json(completion_from_reply(&reply))).into_response())
}
