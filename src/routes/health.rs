//! `GET /health`: liveness and readiness, plus how many keys each provider
//! can use now. Always 200 while the process serves: it only serves once
//! the store is open and the pools are loaded, which is what "ready" means
//! for a load balancer. A provider with no available key is shown, not
//! treated as the gateway being down, and neither is a lost Redis link: a
//! replica without Redis serves on its own view (`cluster.redis`).

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
    let mut body = json!({ "status": "ok", "ready": true, "providers": providers });
    if let Some(cluster) = &state.cluster {
        body["cluster"] = json!({
            "replica_id": cluster.replica_id(),
            "redis": if cluster.redis_connected() { "connected" } else { "disconnected" },
        });
    }
    Ok(Json(body))
}
