//! Queries on `api_keys`. Rows carry sealed keys only; listing never needs
//! decryption (the masked form is stored).

use sqlx::{Sqlite, SqliteExecutor, Transaction};

use super::StoreError;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StoredKey {
    pub id: String,
    pub provider: String,
    pub fingerprint: String,
    pub sealed_key: String,
    /// The key's masked form, e.g. `sk-ant-…Xa1b` (stored in the column
    /// `label`, named before admins could give keys names).
    #[sqlx(rename = "label")]
    pub masked: String,
    /// A free-form name given by an admin (`team-a`).
    pub name: Option<String>,
    pub weight: i64,
    pub enabled: bool,
}

/// The columns of `StoredKey`, for `concat!` (queries stay literals).
macro_rules! columns {
    () => {
        "id, provider, fingerprint, sealed_key, label, name, weight, enabled"
    };
}

pub async fn all(executor: impl SqliteExecutor<'_>) -> Result<Vec<StoredKey>, StoreError> {
    let sql = concat!("SELECT ", columns!(), " FROM api_keys ORDER BY rowid");
    Ok(sqlx::query_as::<_, StoredKey>(sql)
        .fetch_all(executor)
        .await?)
}

pub async fn for_provider(
    executor: impl SqliteExecutor<'_>,
    provider: &str,
) -> Result<Vec<StoredKey>, StoreError> {
    let sql = concat!(
        "SELECT ",
        columns!(),
        " FROM api_keys WHERE provider = ? ORDER BY rowid"
    );
    Ok(sqlx::query_as::<_, StoredKey>(sql)
        .bind(provider)
        .fetch_all(executor)
        .await?)
}

pub async fn find(
    executor: impl SqliteExecutor<'_>,
    provider: &str,
    id: &str,
) -> Result<Option<StoredKey>, StoreError> {
    let sql = concat!(
        "SELECT ",
        columns!(),
        " FROM api_keys WHERE provider = ? AND id = ?"
    );
    Ok(sqlx::query_as::<_, StoredKey>(sql)
        .bind(provider)
        .bind(id)
        .fetch_optional(executor)
        .await?)
}

/// Inserts the key unless one with the same fingerprint exists; returns
/// whether a row was added. Restarting with the same keys adds nothing.
pub async fn insert_if_new(
    tx: &mut Transaction<'_, Sqlite>,
    key: &StoredKey,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "INSERT INTO api_keys (id, provider, fingerprint, sealed_key, label, name, weight, enabled)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (provider, fingerprint) DO NOTHING",
    )
    .bind(&key.id)
    .bind(&key.provider)
    .bind(&key.fingerprint)
    .bind(&key.sealed_key)
    .bind(&key.masked)
    .bind(&key.name)
    .bind(key.weight)
    .bind(key.enabled)
    .execute(&mut **tx)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Changes what an admin may change; `None` leaves a field as it is.
/// Returns whether the key exists.
pub async fn update(
    executor: impl SqliteExecutor<'_>,
    provider: &str,
    id: &str,
    name: Option<&str>,
    weight: Option<i64>,
    enabled: Option<bool>,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "UPDATE api_keys SET name = COALESCE(?, name), weight = COALESCE(?, weight),
                             enabled = COALESCE(?, enabled)
         WHERE provider = ? AND id = ?",
    )
    .bind(name)
    .bind(weight)
    .bind(enabled)
    .bind(provider)
    .bind(id)
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Deletes the key (its state goes with it); returns whether it existed.
pub async fn delete(
    executor: impl SqliteExecutor<'_>,
    provider: &str,
    id: &str,
) -> Result<bool, StoreError> {
    let result = sqlx::query("DELETE FROM api_keys WHERE provider = ? AND id = ?")
        .bind(provider)
        .bind(id)
        .execute(executor)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Replaces a row's seal and fingerprint (master key rotation).
pub async fn reseal(
    tx: &mut Transaction<'_, Sqlite>,
    id: &str,
    fingerprint: &str,
    sealed_key: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE api_keys SET fingerprint = ?, sealed_key = ? WHERE id = ?")
        .bind(fingerprint)
        .bind(sealed_key)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A digest of everything about the key set that a running pool mirrors
/// (ids, switches, weights, names): when it changes, another process (the
/// CLI) changed the keys.
pub async fn signature(executor: impl SqliteExecutor<'_>) -> Result<String, StoreError> {
    let signature: Option<String> = sqlx::query_scalar(
        "SELECT group_concat(id || ':' || enabled || ':' || weight || ':' || coalesce(name, ''), ',')
         FROM (SELECT * FROM api_keys ORDER BY rowid)",
    )
    .fetch_one(executor)
    .await?;
    Ok(signature.unwrap_or_default())
}
