//! Admin routes over the key pools (behind `auth::require_admin`):
//! statistics for all providers, one provider's status, and reset.
//!
//! Both list the models that answered without a price (this replica's
//! view), so an operator watching the pools sees costs that are unknown.
//!
//! In a cluster the pools' counters are the cluster's totals (see
//! `keypool::counts`), and both bodies gain a `cluster` object: this
//! replica's id and Redis link, and in `/status` each live replica's own
//! share. All of it is read from local memory.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use crate::app_state::AppState;
use crate::domain::ProviderKind;
use crate::error::ApiError;
use crate::routes::pool_for;

/// `GET /api/keypool/stats`
pub async fn pool_stats(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let mut providers = BTreeMap::new();
    for pool in state.pools.iter() {
        providers.insert(pool.provider().as_str(), pool.stats()?);
    }
    let mut body =
        json!({ "providers": providers, "unpriced_models": unpriced_models(&state, None) });
    if let Some(cluster) = &state.cluster {
        body["cluster"] = json!({
            "replica_id": cluster.replica_id(),
            "redis_connected": cluster.redis_connected(),
        });
    }
    Ok(Json(body))
}

/// `GET /api/keypool/{provider}/status`
pub async fn pool_status(
    State(state): State<AppState>,
    Path(provider): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (kind, pool) = pool_for(&state, &provider)?;
    let status = pool.status()?;
    let mut body = json!(status);
    body["unpriced_models"] = unpriced_models(&state, Some(kind));
    Ok(Json(with_cluster(&state, kind, body)))
}

/// The models answered without a price, of `provider` or of all.
fn unpriced_models(state: &AppState, provider: Option<ProviderKind>) -> Value {
    let table = state.prices.table();
    let models: Vec<_> = state
        .prices
        .unpriced()
        .list(&table)
        .into_iter()
        .filter(|seen| provider.is_none_or(|p| p == seen.provider))
        .collect();
    json!(models)
}

/// Adds the `cluster` object to a status body: each live replica's own
/// share of this provider's counters.
fn with_cluster(state: &AppState, provider: ProviderKind, mut body: Value) -> Value {
    if let Some(cluster) = &state.cluster {
        let replicas: Vec<Value> = cluster
            .replicas()
            .into_iter()
            .map(|replica| {
                let share = replica
                    .providers
                    .get(provider.as_str())
                    .cloned()
                    .unwrap_or_default();
                let keys: BTreeMap<String, Value> = share
                    .keys
                    .iter()
                    .map(|(key, [requests, successes, failures])| {
                        (
                            key.clone(),
                            json!({ "requests": requests, "successes": successes, "failures": failures }),
                        )
                    })
                    .collect();
                json!({
                    "replica_id": replica.replica_id,
                    "total_requests": share.total_requests,
                    "successful_requests": share.successful_requests,
                    "failed_requests": share.failed_requests,
                    "rotations": share.rotations,
                    "keys": keys,
                })
            })
            .collect();
        body["cluster"] = json!({
            "replica_id": cluster.replica_id(),
            "redis_connected": cluster.redis_connected(),
            "replicas": replicas,
        });
    }
    body
}

/// `POST /api/keypool/{provider}/reset`
pub async fn reset_pool(
    State(state): State<AppState>,
    Path(provider): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (kind, pool) = pool_for(&state, &provider)?;
    let status = pool.reset()?;
    tracing::info!(provider = %pool.provider(), "admin reset the key pool");
    Ok(Json(with_cluster(&state, kind, json!(status))))
}
