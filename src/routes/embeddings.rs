//! `POST /v1/embeddings`: OpenAI's embeddings from the OpenAI pool, the
//! client's body passed through (batched inputs as they are), priced per
//! input token like any other answer. Errors come back in OpenAI's shape.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use crate::app_state::AppState;
use crate::domain::ProviderKind;
use crate::error::{ApiError, Dialect, answer_in};
use crate::extract::read_bytes;
use crate::gateway::render::json_response;
use crate::observe::RequestLog;
use crate::providers::{Endpoint, UpstreamCall};
use crate::routes::sdk_fields::SdkFields;

pub async fn create_embedding(
    State(state): State<AppState>,
    log: RequestLog,
    body: Body,
) -> Response {
    answer_in(Dialect::OpenAI, serve(&state, &log, body).await)
}

async fn serve(state: &AppState, log: &RequestLog, body: Body) -> Result<Response, ApiError> {
    let bytes = read_bytes(body, state.body_limit).await?;
    let fields = SdkFields::parse(&bytes)?;
    let model = fields.model()?;
    fields.check_input()?;
    let call = UpstreamCall {
        provider: ProviderKind::OpenAI,
        endpoint: Endpoint::Embeddings,
        body: bytes,
        headers: HeaderMap::new(),
        model: Some(model.into()),
        session_header: None,
        session_parts: None,
        bound: None,
    };
    Ok(json_response(state.gateway.json(&call, log).await?))
}
