//! The usage ledger's admin routes (behind `auth::require_admin`):
//! `GET /api/usage`, totals per group over a time range, and
//! `GET /api/usage/requests`, the recorded requests page by page. Parameters
//! are parsed by `ledger::query`; a bad one is a 400 that names it.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};

use crate::app_state::AppState;
use crate::error::ApiError;
use crate::ledger::now_ms;
use crate::ledger::query::{PageQuery, ParamError, UsageQuery, encode_cursor};
use crate::ledger::savings::totals_with_savings;
use crate::routes::usage_views::{RequestPage, RequestView, UsageReport};
use crate::store::StoreError;
use crate::store::usage::page;

type Params = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// `GET /api/usage`
pub async fn usage_totals(
    State(state): State<AppState>,
    params: Params,
) -> Result<Json<UsageReport>, ApiError> {
    let query = UsageQuery::parse(&pairs(params)?, now_ms()).map_err(refused)?;
    let (groups, savings) = totals_with_savings(
        state.vault.store(),
        &state.prices.table(),
        &query.filter,
        &query.group_by,
    )
    .await
    .map_err(storage_error)?;
    Ok(Json(UsageReport::new(&query, groups, &savings)))
}

/// `GET /api/usage/requests`
pub async fn usage_requests(
    State(state): State<AppState>,
    params: Params,
) -> Result<Json<RequestPage>, ApiError> {
    let query = PageQuery::parse(&pairs(params)?, now_ms()).map_err(refused)?;
    // One row more than the page: whether there is a next page is known
    // without an empty last page.
    let mut rows = page(
        state.vault.store(),
        &query.filter,
        query.after,
        query.limit + 1,
    )
    .await
    .map_err(storage_error)?;
    let more = rows.len() > query.limit as usize;
    rows.truncate(query.limit as usize);
    let next_cursor = rows
        .last()
        .filter(|_| more)
        .map(|last| encode_cursor(last.position()));
    Ok(Json(RequestPage {
        requests: rows.into_iter().map(RequestView::new).collect(),
        next_cursor,
    }))
}

fn pairs(params: Params) -> Result<Vec<(String, String)>, ApiError> {
    params
        .map(|Query(pairs)| pairs)
        .map_err(|rejection| ApiError::bad_request(format!("query string: {rejection}")))
}

fn refused(error: ParamError) -> ApiError {
    ApiError::bad_request(error.to_string())
}

fn storage_error(error: StoreError) -> ApiError {
    ApiError::unavailable("the usage ledger could not be read").caused_by(error.to_string())
}
