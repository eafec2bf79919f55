//! `GET /health`: liveness, plus how many keys each provider can use now.
//! Always 200 while the process serves; a provider with no available key is
//! shown, not treated as the gateway being down.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::app_state::AppState;
use crate::error::ApiError;

pub async fn health(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let mut providers = BTreeMap::new();
    for pool in state.pools.iter() {
        let stats = pool.stats()?;
        providers.insert(
            pool.provider().as_str(),
            json!({ "total_keys": stats.total_keys, "available_keys": stats.available_keys }),
        );
    }
    Ok(Json(json!({ "status": "ok", "providers": providers })))
}
