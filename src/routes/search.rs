//! `POST /api/search` and `GET /api/search?q=…`: one web search through
//! the search pools, answered in one shape whichever provider served it.
//! Behind the same client keys as chat.

use axum::Json;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::Uri;
use serde::Deserialize;

use crate::app_state::AppState;
use crate::domain::ProviderKind;
use crate::error::ApiError;
use crate::extract::{parse_json, read_bytes};
use crate::gateway::{Choice, SearchAnswer};
use crate::observe::RequestLog;
use crate::providers::search::SearchQuery;

/// The input, as a JSON body or as query parameters.
#[derive(Debug, Deserialize)]
#[serde(expecting = "a JSON object with a \"q\" string")]
pub struct SearchInput {
    q: Option<String>,
    num: Option<u32>,
    start: Option<u32>,
    provider: Option<String>,
    country: Option<String>,
    language: Option<String>,
    safe: Option<String>,
}

impl SearchInput {
    fn parse(self) -> Result<(Choice, SearchQuery), ApiError> {
        let choice = match self.provider.as_deref().map(str::trim) {
            None | Some("" | "auto") => Choice::Auto,
            Some(name) => {
                let provider: ProviderKind = name
                    .parse()
                    .map_err(|e| ApiError::bad_request(format!("provider: {e}")))?;
                if !provider.is_search() {
                    return Err(ApiError::bad_request(format!(
                        "provider: {provider} is not a search provider; use auto, serpapi, \
                         google_cse or brave"
                    )));
                }
                Choice::Only(provider)
            }
        };
        let query = SearchQuery::parse(
            self.q,
            self.num,
            self.start,
            self.country,
            self.language,
            self.safe,
        )
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok((choice, query))
    }
}

pub async fn search_post(
    State(state): State<AppState>,
    log: RequestLog,
    body: Body,
) -> Result<Json<SearchAnswer>, ApiError> {
    let bytes = read_bytes(body, state.body_limit).await?;
    let input: SearchInput = parse_json(&bytes)?;
    run(&state, &log, input).await
}

pub async fn search_get(
    State(state): State<AppState>,
    log: RequestLog,
    uri: Uri,
) -> Result<Json<SearchAnswer>, ApiError> {
    let Query(input) = Query::<SearchInput>::try_from_uri(&uri)
        .map_err(|e| ApiError::bad_request(e.body_text()))?;
    run(&state, &log, input).await
}

async fn run(
    state: &AppState,
    log: &RequestLog,
    input: SearchInput,
) -> Result<Json<SearchAnswer>, ApiError> {
    let (choice, query) = input.parse()?;
    let answer = state.search.search(choice, &query, log).await?;
    Ok(Json(answer))
}
