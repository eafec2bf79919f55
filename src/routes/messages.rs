//! `POST /v1/messages`: Anthropic's Messages API for the official SDKs
//! (point `base_url` at keygate). The client's body goes upstream byte for
//! byte with a pool key; answers and stream events come back in Anthropic's
//! shapes, errors too, so the SDK raises its usual exceptions.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use crate::affinity::session_header;
use crate::app_state::AppState;
use crate::domain::ProviderKind;
use crate::error::{ApiError, Dialect, answer_in};
use crate::extract::read_bytes;
use crate::gateway::render::json_response;
use crate::gateway::render::passthrough::Passthrough;
use crate::observe::RequestLog;
use crate::providers::{Endpoint, UpstreamCall};
use crate::routes::sdk_fields::SdkFields;

/// Client headers that must reach Anthropic unchanged (its gateway contract).
const FORWARDED: &[&str] = &["anthropic-version", "anthropic-beta"];

pub async fn create_message(
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
    let stream = check(&fields)?;
    let model = Some(fields.model()?.into());
    let headers = forwarded(client_headers);
    let session_parts = Some(fields.session_parts(&bytes));
    let call = UpstreamCall {
        endpoint: Endpoint::Chat,
        provider: ProviderKind::Anthropic,
        body: bytes,
        headers,
        model,
        session_header: session_header(client_headers),
        session_parts,
        bound: None,
    };
    if stream {
        return state
            .gateway
            .stream(&call, log, |_, _| Passthrough::anthropic())
            .await;
    }
    Ok(json_response(state.gateway.json(&call, log).await?))
}

/// The client's `anthropic-version` and `anthropic-beta`, to send upstream.
pub(crate) fn forwarded(client_headers: &HeaderMap) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for name in FORWARDED {
        for value in client_headers.get_all(*name) {
            headers.append(*name, value.clone());
        }
    }
    headers
}

/// What keygate needs to route and account; Anthropic judges the rest.
fn check(fields: &SdkFields) -> Result<bool, ApiError> {
    fields.model()?;
    fields.check_anthropic_messages()?;
    fields.check_max_tokens()?;
    fields.check_common()?;
    fields.stream()
}
