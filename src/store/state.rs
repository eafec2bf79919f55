//! Queries on `key_state` and `provider_stats`: the pool's runtime state as
//! JSON documents, saved in one transaction per flush and read at start.

use std::collections::HashMap;

use sqlx::SqlitePool;

use super::StoreError;

/// One flush: provider counters and the keys whose state changed.
pub struct StateBatch {
    pub provider: String,
    /// `None`: the counters did not change.
    pub provider_stats: Option<String>,
    pub keys: Vec<(String, String)>,
}

pub async fn save(pool: &SqlitePool, batches: &[StateBatch]) -> Result<(), StoreError> {
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
pub async fn load_keys(
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

pub async fn load_provider_stats(
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
