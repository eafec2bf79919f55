//! Admin routes over the key pools (behind `auth::require_admin`):
//! statistics for all providers, one provider's status, and reset.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use crate::app_state::AppState;
use crate::error::ApiError;
use crate::keypool::PoolStatus;
use crate::routes::pool_for;

/// `GET /api/keypool/stats`
pub async fn pool_stats(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let mut providers = BTreeMap::new();
    for pool in state.pools.iter() {
        providers.insert(pool.provider().as_str(), pool.stats()?);
    }
    Ok(Json(json!({ "providers": providers })))
}

/// `GET /api/keypool/{provider}/status`
pub async fn pool_status(
    State(state): State<AppState>,
    Path(provider): Path<String>,
) -> Result<Json<PoolStatus>, ApiError> {
    Ok(Json(pool_for(&state, &provider)?.1.status()?))
}

/// `POST /api/keypool/{provider}/reset`
pub async fn reset_pool(
    State(state): State<AppState>,
    Path(provider): Path<String>,
) -> Result<Json<PoolStatus>, ApiError> {
    let (_, pool) = pool_for(&state, &provider)?;
    let status = pool.reset()?;
    tracing::info!(provider = %pool.provider(), "admin reset the key pool");
    Ok(Json(status))
}
