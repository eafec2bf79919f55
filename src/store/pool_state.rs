//! Queries on `key_state` and `provider_stats`: the pools' runtime state as
//! JSON documents (`keypool::snapshot`), saved in one transaction per flush
//! by the `state_saver` task and read at start. Also the one write made
//! outside a running pool: a key check's verdict from the CLI.
//!
//! With several replicas on one PostgreSQL database, each saves its own
//! view: a document is replaced whole, never merged field by field, so what
//! is stored is always one replica's consistent snapshot of that key (the
//! last one saved), never a mix. Rows are written in one order (provider,
//! then key id), so two replicas' flushes wait for each other's row locks
//! instead of deadlocking.

use std::collections::HashMap;

use super::{Store, StoreError, on_pool, on_tx};
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
pub async fn save_changes(store: &Store, changes: &[PoolChanges]) -> Result<(), StoreError> {
    let mut batches: Vec<StateBatch> = changes
        .iter()
        .filter(|c| c.provider_stats.is_some() || !c.keys.is_empty())
        .map(|c| StateBatch {
            provider: c.provider.as_str().to_string(),
            provider_stats: c.provider_stats.as_ref().map(to_json),
            keys: c
                .keys
                .iter()
                .map(|(id, saved)| (id.to_string(), to_json(&saved)))
                .collect(),
        })
        .collect();
    if batches.is_empty() {
        return Ok(());
    }
    batches.sort_by(|a, b| a.provider.cmp(&b.provider));
    for batch in &mut batches {
        batch.keys.sort_by(|a, b| a.0.cmp(&b.0));
    }
    save(store, &batches).await
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
    let mut saved: SavedKey = load_keys(store, provider.as_str())
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
    save(store, &[batch]).await
}

/// What was saved for `provider`: its counters and each key's state. A
/// document that no longer parses is skipped (with a warning), never fatal.
pub async fn load_saved(
    store: &Store,
    provider: ProviderKind,
) -> Result<(Option<SavedProvider>, HashMap<String, SavedKey>), StoreError> {
    let stats = load_provider_stats(store, provider.as_str())
        .await?
        .and_then(|json| serde_json::from_str(&json).ok());
    let keys = load_keys(store, provider.as_str())
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

/// The time a row is saved, in the format of the tables' `updated_at`
/// defaults (`2026-01-15T08:30:00.123Z`); written from keygate's clock so
/// one statement text serves both databases.
fn now_text() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

async fn save(store: &Store, batches: &[StateBatch]) -> Result<(), StoreError> {
    let now = now_text();
    let mut tx = store.begin().await?;
    for batch in batches {
        if let Some(stats) = &batch.provider_stats {
            let sql = "INSERT INTO provider_stats (provider, data) VALUES ($1, $2)
                 ON CONFLICT (provider) DO UPDATE SET data = excluded.data, updated_at = $3";
            on_tx!(&mut tx, |conn, Db| {
                sqlx::query(sql)
                    .bind(&batch.provider)
                    .bind(stats)
                    .bind(&now)
                    .execute(&mut **conn)
                    .await
                    .map(|_| ())
            })?;
        }
        for (key_id, data) in &batch.keys {
            // A key deleted since the snapshot was taken is skipped.
            let sql = "INSERT INTO key_state (key_id, data)
                 SELECT $1, $2 WHERE EXISTS (SELECT 1 FROM api_keys WHERE id = $1)
                 ON CONFLICT (key_id) DO UPDATE SET data = excluded.data, updated_at = $3";
            on_tx!(&mut tx, |conn, Db| {
                sqlx::query(sql)
                    .bind(key_id)
                    .bind(data)
                    .bind(&now)
                    .execute(&mut **conn)
                    .await
                    .map(|_| ())
            })?;
        }
    }
    tx.commit().await
}

/// Saved key states of one provider, by key id.
async fn load_keys(store: &Store, provider: &str) -> Result<HashMap<String, String>, StoreError> {
    let sql = "SELECT s.key_id, s.data FROM key_state s JOIN api_keys k ON k.id = s.key_id \
               WHERE k.provider = $1";
    let rows: Vec<(String, String)> = on_pool!(store, |pool, Db| {
        sqlx::query_as(sql).bind(provider).fetch_all(pool).await
    })?;
    Ok(rows.into_iter().collect())
}

async fn load_provider_stats(store: &Store, provider: &str) -> Result<Option<String>, StoreError> {
    let sql = "SELECT data FROM provider_stats WHERE provider = $1";
    Ok(on_pool!(store, |pool, Db| {
        sqlx::query_scalar(sql)
            .bind(provider)
            .fetch_optional(pool)
            .await
    })?)
}
