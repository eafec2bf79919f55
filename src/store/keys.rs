//! Queries on `api_keys`. Rows carry sealed keys only; listing never needs
//! decryption (the masked form is stored). Keys are listed in the order
//! they were added: SQLite's `rowid`, or the identity column of that name
//! in PostgreSQL.

use super::{Store, StoreError, Tx, on_pool, on_tx};

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
    /// Whose prompt cache the key uses (`domain::key_fields::CacheScope`);
    /// `None`: its own.
    pub cache_scope: Option<String>,
}

/// The columns of `StoredKey`, for `concat!` (queries stay literals).
macro_rules! columns {
    () => {
        "id, provider, fingerprint, sealed_key, label, name, weight, enabled, cache_scope"
    };
}

const ALL: &str = concat!("SELECT ", columns!(), " FROM api_keys ORDER BY rowid");

pub async fn all(store: &Store) -> Result<Vec<StoredKey>, StoreError> {
    Ok(on_pool!(store, |pool, Db| {
        sqlx::query_as::<_, StoredKey>(ALL).fetch_all(pool).await
    })?)
}

/// `all`, inside a transaction.
pub async fn all_in(tx: &mut Tx) -> Result<Vec<StoredKey>, StoreError> {
    Ok(on_tx!(tx, |conn, Db| {
        sqlx::query_as::<_, StoredKey>(ALL)
            .fetch_all(&mut **conn)
            .await
    })?)
}

pub async fn for_provider(store: &Store, provider: &str) -> Result<Vec<StoredKey>, StoreError> {
    let sql = concat!(
        "SELECT ",
        columns!(),
        " FROM api_keys WHERE provider = $1 ORDER BY rowid"
    );
    Ok(on_pool!(store, |pool, Db| {
        sqlx::query_as::<_, StoredKey>(sql)
            .bind(provider)
            .fetch_all(pool)
            .await
    })?)
}

pub async fn find(
    store: &Store,
    provider: &str,
    id: &str,
) -> Result<Option<StoredKey>, StoreError> {
    let sql = concat!(
        "SELECT ",
        columns!(),
        " FROM api_keys WHERE provider = $1 AND id = $2"
    );
    Ok(on_pool!(store, |pool, Db| {
        sqlx::query_as::<_, StoredKey>(sql)
            .bind(provider)
            .bind(id)
            .fetch_optional(pool)
            .await
    })?)
}

/// The fingerprints of `provider`'s stored keys: importing a large pool
/// again at every start seals (and inserts) only the keys that are new.
pub async fn fingerprints_in(
    tx: &mut Tx,
    provider: &str,
) -> Result<std::collections::HashSet<String>, StoreError> {
    let sql = "SELECT fingerprint FROM api_keys WHERE provider = $1";
    let rows: Vec<String> = on_tx!(tx, |conn, Db| {
        sqlx::query_scalar::<_, String>(sql)
            .bind(provider)
            .fetch_all(&mut **conn)
            .await
    })?;
    Ok(rows.into_iter().collect())
}

/// Inserts the key unless one with the same fingerprint exists; returns
/// whether a row was added. Restarting with the same keys adds nothing.
pub async fn insert_if_new(tx: &mut Tx, key: &StoredKey) -> Result<bool, StoreError> {
    let sql =
        "INSERT INTO api_keys (id, provider, fingerprint, sealed_key, label, name, weight, enabled,
                               cache_scope)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (provider, fingerprint) DO NOTHING";
    let result = on_tx!(tx, |conn, Db| {
        sqlx::query(sql)
            .bind(&key.id)
            .bind(&key.provider)
            .bind(&key.fingerprint)
            .bind(&key.sealed_key)
            .bind(&key.masked)
            .bind(&key.name)
            .bind(key.weight)
            .bind(key.enabled)
            .bind(&key.cache_scope)
            .execute(&mut **conn)
            .await
            .map(|done| done.rows_affected())
    })?;
    Ok(result == 1)
}

/// What an admin may change about a key; `None` leaves a field as it is,
/// and a `cache_scope` of `""` clears the scope.
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyUpdate<'a> {
    pub name: Option<&'a str>,
    pub weight: Option<i64>,
    pub enabled: Option<bool>,
    pub cache_scope: Option<&'a str>,
}

/// Changes what an admin may change. Returns whether the key exists.
pub async fn update(
    store: &Store,
    provider: &str,
    id: &str,
    change: KeyUpdate<'_>,
) -> Result<bool, StoreError> {
    let sql = "UPDATE api_keys SET name = COALESCE($1, name), weight = COALESCE($2, weight),
                             enabled = COALESCE($3, enabled),
                             cache_scope = NULLIF(COALESCE($4, cache_scope), '')
         WHERE provider = $5 AND id = $6";
    let result = on_pool!(store, |pool, Db| {
        sqlx::query(sql)
            .bind(change.name)
            .bind(change.weight)
            .bind(change.enabled)
            .bind(change.cache_scope)
            .bind(provider)
            .bind(id)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
    })?;
    Ok(result == 1)
}

/// Gives the stored key with `fingerprint` the settings the environment
/// names for it (its scope, name, weight; `None` leaves one as it is):
/// the environment is re-read at every start, and a scope added there
/// later must reach a key stored before.
pub async fn adopt_settings(
    tx: &mut Tx,
    provider: &str,
    fingerprint: &str,
    change: KeyUpdate<'_>,
) -> Result<(), StoreError> {
    let sql = "UPDATE api_keys SET name = COALESCE($1, name), weight = COALESCE($2, weight),
                             cache_scope = COALESCE($3, cache_scope)
         WHERE provider = $4 AND fingerprint = $5";
    on_tx!(tx, |conn, Db| {
        sqlx::query(sql)
            .bind(change.name)
            .bind(change.weight)
            .bind(change.cache_scope)
            .bind(provider)
            .bind(fingerprint)
            .execute(&mut **conn)
            .await
            .map(|_| ())
    })?;
    Ok(())
}

/// Deletes the key (its state goes with it); returns whether it existed.
pub async fn delete(store: &Store, provider: &str, id: &str) -> Result<bool, StoreError> {
    let sql = "DELETE FROM api_keys WHERE provider = $1 AND id = $2";
    let result = on_pool!(store, |pool, Db| {
        sqlx::query(sql)
            .bind(provider)
            .bind(id)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
    })?;
    Ok(result == 1)
}

/// Replaces a row's seal and fingerprint (master key rotation).
pub async fn reseal(
    tx: &mut Tx,
    id: &str,
    fingerprint: &str,
    sealed_key: &str,
) -> Result<(), StoreError> {
    let sql = "UPDATE api_keys SET fingerprint = $1, sealed_key = $2 WHERE id = $3";
    on_tx!(tx, |conn, Db| {
        sqlx::query(sql)
            .bind(fingerprint)
            .bind(sealed_key)
            .bind(id)
            .execute(&mut **conn)
            .await
            .map(|_| ())
    })?;
    Ok(())
}

/// A digest of everything about the key set that a running pool mirrors
/// (ids, switches, weights, names, scopes): when it changes, another process (the
/// CLI, another replica) changed the keys.
pub async fn signature(store: &Store) -> Result<String, StoreError> {
    let signature: Option<String> = match store.backend() {
        super::Backend::Sqlite(pool) => {
            sqlx::query_scalar(
                "SELECT group_concat(id || ':' || enabled || ':' || weight || ':' || coalesce(name, '') \
                 || ':' || coalesce(cache_scope, ''), ',')
                 FROM (SELECT * FROM api_keys ORDER BY rowid)",
            )
            .fetch_one(pool)
            .await?
        }
        super::Backend::Postgres(pool) => {
            sqlx::query_scalar(
                "SELECT string_agg(id || ':' || enabled::text || ':' || weight::text || ':' \
                 || coalesce(name, '') || ':' || coalesce(cache_scope, ''), ',' ORDER BY rowid) \
                 FROM api_keys",
            )
            .fetch_one(pool)
            .await?
        }
    };
    Ok(signature.unwrap_or_default())
}
