//! Moving an installation from one database to another (`keygate store
//! copy`): keys, saved state, resource bindings and the usage ledger, in
//! one transaction on
//! the target, so a failed copy leaves the target as it was.
//!
//! Rows are copied as stored: keys keep their ids and seals (a seal is
//! bound to its row's id, provider and fingerprint, and the format is the
//! same in both databases), ledger rows keep their ids, timestamps their
//! text. Running the copy again adds nothing:
//! - keys, key state, provider counters and resource bindings already in
//!   the target (by id, or for keys by provider and fingerprint) are left
//!   as they are;
//! - the ledger is copied only into a target whose ledger is empty; a
//!   target that holds exactly the source's rows (an earlier copy) is
//!   left alone, and any other ledger is refused, since the rollups could
//!   not be merged without counting requests twice.
//!
//! Tables are read in pages of `PAGE` rows, so memory stays small however
//! long the ledger is.
//!
//! - `ledger`: the usage ledger's raw rows and rollups.

use sqlx::FromRow;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

mod ledger;

use super::usage::exclude_other_writers;
use super::{Store, StoreError, Tx, on_tx};

/// Rows read (and written) per statement.
const PAGE: i64 = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "the target's usage ledger already holds {rows} rows that are not this source's; \
         the ledger can only be copied into an empty one. Nothing was copied"
    )]
    LedgerNotEmpty { rows: i64 },
}

/// What happened to one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCopy {
    pub table: &'static str,
    /// Rows in the source.
    pub source_rows: u64,
    /// Rows the copy added to the target.
    pub new_rows: u64,
}

/// Copies everything from `source` to `target` in one target transaction;
/// returns the counts per table.
pub async fn copy_all(source: &Store, target: &Store) -> Result<Vec<TableCopy>, CopyError> {
    let mut from = source.begin_snapshot().await?;
    let mut to = target.begin_write().await?;
    // Replicas already running on the target write their ledger under the
    // same lock: the ledger check below stays true until the commit.
    exclude_other_writers(&mut to).await?;
    let mut report = vec![
        copy_keys(&mut from, &mut to).await?,
        copy_documents(&mut from, &mut to, "key_state", "key_id").await?,
        copy_documents(&mut from, &mut to, "provider_stats", "provider").await?,
        copy_bindings(&mut from, &mut to).await?,
    ];
    report.extend(ledger::copy_ledger(&mut from, &mut to).await?);
    to.commit().await?;
    from.rollback().await?;
    Ok(report)
}

/// Every row of a small table; `T` reads either database's rows.
async fn fetch_all<T>(tx: &mut Tx, sql: &str) -> Result<Vec<T>, StoreError>
where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin,
{
    Ok(on_tx!(tx, |conn, Db| {
        sqlx::query_as::<_, T>(sql).fetch_all(&mut **conn).await
    })?)
}

async fn count(tx: &mut Tx, sql: &str, bound: Option<i64>) -> Result<i64, StoreError> {
    Ok(on_tx!(tx, |conn, Db| {
        let mut query = sqlx::query_scalar::<_, i64>(sql);
        if let Some(bound) = bound {
            query = query.bind(bound);
        }
        query.fetch_one(&mut **conn).await
    })?)
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: String,
    provider: String,
    fingerprint: String,
    sealed_key: String,
    label: String,
    created_at: String,
    name: Option<String>,
    weight: i64,
    enabled: bool,
    cache_scope: Option<String>,
}

async fn copy_keys(from: &mut Tx, to: &mut Tx) -> Result<TableCopy, StoreError> {
    let rows: Vec<KeyRow> = fetch_all(
        from,
        "SELECT id, provider, fingerprint, sealed_key, label, created_at, name, weight, enabled, \
         cache_scope FROM api_keys ORDER BY rowid",
    )
    .await?;
    // In the source's order, so the target lists them the same way.
    let sql = "INSERT INTO api_keys (id, provider, fingerprint, sealed_key, label, created_at, \
               name, weight, enabled, cache_scope) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
               ON CONFLICT DO NOTHING";
    let mut new_rows = 0;
    for row in &rows {
        new_rows += on_tx!(&mut *to, |conn, Db| {
            sqlx::query(sql)
                .bind(&row.id)
                .bind(&row.provider)
                .bind(&row.fingerprint)
                .bind(&row.sealed_key)
                .bind(&row.label)
                .bind(&row.created_at)
                .bind(&row.name)
                .bind(row.weight)
                .bind(row.enabled)
                .bind(&row.cache_scope)
                .execute(&mut **conn)
                .await
                .map(|done| done.rows_affected())
        })?;
    }
    Ok(TableCopy {
        table: "api_keys",
        source_rows: rows.len() as u64,
        new_rows,
    })
}

/// `key_state` or `provider_stats`: JSON documents under a name. Key
/// state is copied only for keys the target holds under the same id.
async fn copy_documents(
    from: &mut Tx,
    to: &mut Tx,
    table: &'static str,
    name: &'static str,
) -> Result<TableCopy, StoreError> {
    let rows: Vec<(String, String, String)> = fetch_all(
        from,
        &format!("SELECT {name}, data, updated_at FROM {table} ORDER BY {name}"),
    )
    .await?;
    let only_known_keys = if table == "key_state" {
        " WHERE EXISTS (SELECT 1 FROM api_keys WHERE id = $1)"
    } else {
        // SQLite needs a WHERE before ON CONFLICT in INSERT … SELECT.
        " WHERE TRUE"
    };
    let sql = format!(
        "INSERT INTO {table} ({name}, data, updated_at) SELECT $1, $2, $3{only_known_keys} \
         ON CONFLICT ({name}) DO NOTHING"
    );
    let mut new_rows = 0;
    for (id, data, updated_at) in &rows {
        new_rows += on_tx!(&mut *to, |conn, Db| {
            sqlx::query(&sql)
                .bind(id)
                .bind(data)
                .bind(updated_at)
                .execute(&mut **conn)
                .await
                .map(|done| done.rows_affected())
        })?;
    }
    Ok(TableCopy {
        table,
        source_rows: rows.len() as u64,
        new_rows,
    })
}

#[derive(sqlx::FromRow)]
struct BindingRow {
    provider: String,
    resource_id: String,
    kind: String,
    key_id: String,
    created_at_ms: i64,
    expires_at_ms: i64,
}

/// `resource_bindings`: which key made each stored response, batch and
/// file, so calls naming them keep going to that key after the move.
async fn copy_bindings(from: &mut Tx, to: &mut Tx) -> Result<TableCopy, StoreError> {
    let rows: Vec<BindingRow> = fetch_all(
        from,
        "SELECT provider, resource_id, kind, key_id, created_at_ms, expires_at_ms \
         FROM resource_bindings ORDER BY provider, resource_id",
    )
    .await?;
    let sql = "INSERT INTO resource_bindings (provider, resource_id, kind, key_id, \
               created_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4, $5, $6) \
               ON CONFLICT DO NOTHING";
    let mut new_rows = 0;
    for row in &rows {
        new_rows += on_tx!(&mut *to, |conn, Db| {
            sqlx::query(sql)
                .bind(&row.provider)
                .bind(&row.resource_id)
                .bind(&row.kind)
                .bind(&row.key_id)
                .bind(row.created_at_ms)
                .bind(row.expires_at_ms)
                .execute(&mut **conn)
                .await
                .map(|done| done.rows_affected())
        })?;
    }
    Ok(TableCopy {
        table: "resource_bindings",
        source_rows: rows.len() as u64,
        new_rows,
    })
}
