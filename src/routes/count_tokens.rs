//! `POST /v1/messages/count_tokens`: Anthropic's token counting from the
//! Anthropic pool. The body is a Messages request without `max_tokens`,
//! passed through; the answer costs nothing, but a count has its own rate
//! limit per key, so its failures rotate and cool keys like any call.

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
use crate::routes::messages::forwarded;
use crate::routes::sdk_fields::SdkFields;

pub async fn count_tokens(
    State(state): State<AppState>,
    log: RequestLog,
    headers: HeaderMap,
    body: Body,
) -> Response {
    answer_in(
        Dialect::Anthropic,
        serve(&state, &log, &headers, body).await,
    )
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
    fields.check_anthropic_messages()?;
    let call = UpstreamCall {
        provider: ProviderKind::Anthropic,
        endpoint: Endpoint::CountTokens,
        body: bytes,
        headers: forwarded(client_headers),
        model: Some(model.into()),
        session_header: None,
        session_parts: None,
        bound: None,
    };
    Ok(json_response(state.gateway.json(&call, log).await?))
}
