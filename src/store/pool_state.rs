//! Queries on `key_state` and `provider_stats`: the pools' runtime state as
//! JSON documents (`keypool::snapshot`), saved in one transaction per flush
//! by the `state_saver` task and read at start. Also the one write made
//! outside a running pool: a key check's verdict from the CLI.

use std::collections::HashMap;

use sqlx::SqlitePool;

use super::{Store, StoreError};
use crate::domain::{KeyId, ProviderKind};
use crate::keypool::snapshot::{SavedHealth, SavedKey, SavedProvider};

/// What changed in one pool since its last flush.
pub struct PoolChanges {
    pub provider: ProviderKind,
    /// `None`: the counters did not change.
    pub provider_stats: Option<SavedProvider>,
    pub keys: Vec<(KeyId, SavedKey)>,
}

/// Writes every pool's changes in one transaction.
pub async fn save_changes(store: &Store, changes: Vec<PoolChanges>) -> Result<(), StoreError> {
    let batches: Vec<StateBatch> = changes
        .into_iter()
        .filter(|c| c.provider_stats.is_some() || !c.keys.is_empty())
        .map(|c| StateBatch {
            provider: c.provider.as_str().to_string(),
            provider_stats: c.provider_stats.map(|s| to_json(&s)),
            keys: c
                .keys
                .into_iter()
                .map(|(id, saved)| (id.to_string(), to_json(&saved)))
                .collect(),
        })
        .collect();
    if batches.is_empty() {
        return Ok(());
    }
    save(store.pool(), &batches).await
}

/// Records a key check made with the database alone (`keygate keys test`):
/// a rejected key becomes `invalid`, an accepted `invalid` one `active`. A
/// running keygate keeps its own view until it restarts.
pub async fn save_health(
    store: &Store,
    provider: ProviderKind,
    key_id: &KeyId,
    health: SavedHealth,
) -> Result<(), StoreError> {
    let mut saved: SavedKey = load_keys(store.pool(), provider.as_str())
        .await?
        .get(key_id.as_str())
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default();
    saved.health = health;
    let batch = StateBatch {
        provider: provider.as_str().to_string(),
        provider_stats: None,
        keys: vec![(key_id.to_string(), to_json(&saved))],
    };
    save(store.pool(), &[batch]).await
}

/// What was saved for `provider`: its counters and each key's state. A
/// document that no longer parses is skipped (with a warning), never fatal.
pub async fn load_saved(
    store: &Store,
    provider: ProviderKind,
) -> Result<(Option<SavedProvider>, HashMap<String, SavedKey>), StoreError> {
    let stats = load_provider_stats(store.pool(), provider.as_str())
        .await?
        .and_then(|json| serde_json::from_str(&json).ok());
    let keys = load_keys(store.pool(), provider.as_str())
        .await?
        .into_iter()
        .filter_map(|(id, json)| match serde_json::from_str(&json) {
            Ok(saved) => Some((id, saved)),
            Err(error) => {
                tracing::warn!(key = %id, %error, "ignoring unreadable saved key state");
                None
            }
        })
        .collect();
    Ok((stats, keys))
}

fn to_json(value: &impl serde::Serialize) -> String {
    // Plain structs of strings and numbers always serialise.
    serde_json::to_string(value).unwrap_or_default()
}

/// One flush: provider counters and the keys whose state changed.
struct StateBatch {
    provider: String,
    /// `None`: the counters did not change.
    provider_stats: Option<String>,
    keys: Vec<(String, String)>,
}

async fn save(pool: &SqlitePool, batches: &[StateBatch]) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    for batch in batches {
        if let Some(stats) = &batch.provider_stats {
            sqlx::query(
                "INSERT INTO provider_stats (provider, data) VALUES (?, ?)
             ON CONFLICT (provider) DO UPDATE SET data = excluded.data,
                 updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            )
            .bind(&batch.provider)
            .bind(stats)
            .execute(&mut *tx)
            .await?;
        }
        for (key_id, data) in &batch.keys {
            // A key deleted since the snapshot was taken is skipped.
            sqlx::query(
                "INSERT INTO key_state (key_id, data)
                 SELECT ?1, ?2 WHERE EXISTS (SELECT 1 FROM api_keys WHERE id = ?1)
                 ON CONFLICT (key_id) DO UPDATE SET data = excluded.data,
                     updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            )
            .bind(key_id)
            .bind(data)
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Saved key states of one provider, by key id.
async fn load_keys(
    pool: &SqlitePool,
    provider: &str,
) -> Result<HashMap<String, String>, StoreError> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT s.key_id, s.data FROM key_state s JOIN api_keys k ON k.id = s.key_id WHERE k.provider = ?",
    )
    .bind(provider)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}

async fn load_provider_stats(
    pool: &SqlitePool,
    provider: &str,
) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT data FROM provider_stats WHERE provider = ?")
            .bind(provider)
            .fetch_optional(pool)
            .await?,
    )
}
