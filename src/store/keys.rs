//! Queries on `api_keys`. Rows carry sealed keys only.

use sqlx::{Sqlite, SqliteExecutor, Transaction};

use super::StoreError;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredKey {
    pub id: String,
    pub provider: String,
    pub fingerprint: String,
    pub sealed_key: String,
    pub label: String,
}

pub async fn all(executor: impl SqliteExecutor<'_>) -> Result<Vec<StoredKey>, StoreError> {
    Ok(sqlx::query_as::<_, StoredKey>(
        "SELECT id, provider, fingerprint, sealed_key, label FROM api_keys ORDER BY rowid",
    )
    .fetch_all(executor)
    .await?)
}

pub async fn for_provider(
    executor: impl SqliteExecutor<'_>,
    provider: &str,
) -> Result<Vec<StoredKey>, StoreError> {
    Ok(sqlx::query_as::<_, StoredKey>(
        "SELECT id, provider, fingerprint, sealed_key, label FROM api_keys
         WHERE provider = ? ORDER BY rowid",
    )
    .bind(provider)
    .fetch_all(executor)
    .await?)
}

/// Inserts the key unless one with the same fingerprint exists; returns
/// whether a row was added. Restarting with the same keys adds nothing.
pub async fn insert_if_new(
    tx: &mut Transaction<'_, Sqlite>,
    key: &StoredKey,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "INSERT INTO api_keys (id, provider, fingerprint, sealed_key, label)
         VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (provider, fingerprint) DO NOTHING",
    )
    .bind(&key.id)
    .bind(&key.provider)
    .bind(&key.fingerprint)
    .bind(&key.sealed_key)
    .bind(&key.label)
    .execute(&mut **tx)
    .await?;
    Ok(result.rows_affected() == 1)
}
