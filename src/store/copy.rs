//! Moving an installation from one database to another (`keygate store
//! copy`): keys, saved state and the usage ledger, in one transaction on
//! the target, so a failed copy leaves the target as it was.
//!
//! Rows are copied as stored: keys keep their ids and seals (a seal is
//! bound to its row's id, provider and fingerprint, and the format is the
//! same in both databases), ledger rows keep their ids, timestamps their
//! text. Running the copy again adds nothing:
//! - keys, key state and provider counters already in the target (by id,
//!   or for keys by provider and fingerprint) are left as they are;
//! - the ledger is copied only into a target whose ledger is empty; a
//!   target that holds exactly the source's rows (an earlier copy) is
//!   left alone, and any other ledger is refused, since the rollups could
//!   not be merged without counting requests twice.
//!
//! Tables are read in pages of `PAGE` rows, so memory stays small however
//! long the ledger is.

use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{FromRow, QueryBuilder};

use super::usage::exclude_other_writers;
use super::{Store, StoreError, Tx, on_tx};

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
    ];
    report.extend(copy_ledger(&mut from, &mut to).await?);
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
}

async fn copy_keys(from: &mut Tx, to: &mut Tx) -> Result<TableCopy, StoreError> {
    let rows: Vec<KeyRow> = fetch_all(
        from,
        "SELECT id, provider, fingerprint, sealed_key, label, created_at, name, weight, enabled \
         FROM api_keys ORDER BY rowid",
    )
    .await?;
    // In the source's order, so the target lists them the same way.
    let sql = "INSERT INTO api_keys (id, provider, fingerprint, sealed_key, label, created_at, \
               name, weight, enabled) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
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

const ROLLUP_TABLES: [&str; 3] = ["usage_daily", "usage_hourly", "usage_5min"];

/// The raw rows and the rollups, or nothing if an earlier copy brought
/// them (see the module's notes).
async fn copy_ledger(from: &mut Tx, to: &mut Tx) -> Result<Vec<TableCopy>, CopyError> {
    let source_rows = count(from, "SELECT COUNT(*) FROM usage_requests", None).await?;
    let last_id = count(
        from,
        "SELECT COALESCE(MAX(id), 0) FROM usage_requests",
        None,
    )
    .await?;
    let mut target_rows = count(to, "SELECT COUNT(*) FROM usage_requests", None).await?;
    for table in ROLLUP_TABLES {
        target_rows += count(to, &format!("SELECT COUNT(*) FROM {table}"), None).await?;
    }
    let copy = if target_rows == 0 {
        true
    } else if holds_the_source_rows(from, to, source_rows, last_id).await? {
        false
    } else {
        return Err(CopyError::LedgerNotEmpty { rows: target_rows });
    };
    let mut report = vec![TableCopy {
        table: "usage_requests",
        source_rows: u64::try_from(source_rows).unwrap_or(0),
        new_rows: if copy {
            copy_raw_rows(from, to).await?
        } else {
            0
        },
    }];
    for table in ROLLUP_TABLES {
        let rows = count(from, &format!("SELECT COUNT(*) FROM {table}"), None).await?;
        report.push(TableCopy {
            table,
            source_rows: u64::try_from(rows).unwrap_or(0),
            new_rows: if copy {
                copy_rollups(from, to, table).await?
            } else {
                0
            },
        });
    }
    Ok(report)
}

/// Whether the target's raw rows up to the source's last id are the
/// source's: as many, and the last one the same request.
async fn holds_the_source_rows(
    from: &mut Tx,
    to: &mut Tx,
    source_rows: i64,
    last_id: i64,
) -> Result<bool, StoreError> {
    let up_to = "SELECT COUNT(*) FROM usage_requests WHERE id <= $1";
    if count(to, up_to, Some(last_id)).await? != source_rows {
        return Ok(false);
    }
    let source_last = row_of(from, last_id).await?;
    let target_last = row_of(to, last_id).await?;
    Ok(source_last == target_last)
}

/// The request id and time of the raw row `id`.
async fn row_of(tx: &mut Tx, id: i64) -> Result<Option<(String, i64)>, StoreError> {
    let sql = "SELECT request_id, at_ms FROM usage_requests WHERE id = $1";
    Ok(on_tx!(tx, |conn, Db| {
        sqlx::query_as::<_, (String, i64)>(sql)
            .bind(id)
            .fetch_optional(&mut **conn)
            .await
    })?)
}

#[derive(sqlx::FromRow)]
struct RawRow {
    id: i64,
    at_ms: i64,
    request_id: String,
    route: String,
    provider: Option<String>,
    model_requested: Option<String>,
    model_answered: Option<String>,
    key_id: Option<String>,
    attempts: i64,
    keys_tried: String,
    status: i64,
    error_class: Option<String>,
    input_tokens: i64,
    output_tokens: i64,
    cache_read_tokens: i64,
    cache_write_tokens: i64,
    cost_nanos: i64,
    latency_us: i64,
    latency_bucket: i64,
    ttft_us: Option<i64>,
    client_key: Option<String>,
}

const RAW_COLUMNS: &str = "id, at_ms, request_id, route, provider, model_requested, \
    model_answered, key_id, attempts, keys_tried, status, error_class, input_tokens, \
    output_tokens, cache_read_tokens, cache_write_tokens, cost_nanos, latency_us, \
    latency_bucket, ttft_us, client_key";

async fn copy_raw_rows(from: &mut Tx, to: &mut Tx) -> Result<u64, StoreError> {
    let select =
        format!("SELECT {RAW_COLUMNS} FROM usage_requests WHERE id > $1 ORDER BY id LIMIT $2");
    // PostgreSQL generates the ids itself unless told to keep these.
    let overriding = match to {
        Tx::Postgres(_) => "OVERRIDING SYSTEM VALUE ",
        Tx::Sqlite(_) => "",
    };
    let insert = format!("INSERT INTO usage_requests ({RAW_COLUMNS}) {overriding}");
    let mut after = 0_i64;
    let mut new_rows = 0;
    loop {
        let page: Vec<RawRow> = on_tx!(&mut *from, |conn, Db| {
            sqlx::query_as::<_, RawRow>(&select)
                .bind(after)
                .bind(PAGE)
                .fetch_all(&mut **conn)
                .await
        })?;
        let Some(last) = page.last() else { break };
        after = last.id;
        new_rows += on_tx!(&mut *to, |conn, Db| {
            let mut query = QueryBuilder::<Db>::new(&insert);
            query.push_values(&page, |mut values, row| {
                values
                    .push_bind(row.id)
                    .push_bind(row.at_ms)
                    .push_bind(row.request_id.as_str())
                    .push_bind(row.route.as_str())
                    .push_bind(row.provider.as_deref())
                    .push_bind(row.model_requested.as_deref())
                    .push_bind(row.model_answered.as_deref())
                    .push_bind(row.key_id.as_deref())
                    .push_bind(row.attempts)
                    .push_bind(row.keys_tried.as_str())
                    .push_bind(row.status)
                    .push_bind(row.error_class.as_deref())
                    .push_bind(row.input_tokens)
                    .push_bind(row.output_tokens)
                    .push_bind(row.cache_read_tokens)
                    .push_bind(row.cache_write_tokens)
                    .push_bind(row.cost_nanos)
                    .push_bind(row.latency_us)
                    .push_bind(row.latency_bucket)
                    .push_bind(row.ttft_us)
                    .push_bind(row.client_key.as_deref());
            });
            query.push(" ON CONFLICT DO NOTHING");
            query
                .build()
                .execute(&mut **conn)
                .await
                .map(|done| done.rows_affected())
        })?;
    }
    if let Tx::Postgres(conn) = to
        && new_rows > 0
    {
        // New rows written on the target continue after the copied ids.
        sqlx::query(
            "SELECT setval(pg_get_serial_sequence('usage_requests', 'id'), \
             (SELECT MAX(id) FROM usage_requests))",
        )
        .execute(&mut **conn)
        .await?;
    }
    Ok(new_rows)
}

#[derive(sqlx::FromRow)]
struct RollupRow {
    start_ms: i64,
    provider: String,
    model: String,
    key_id: String,
    status: i64,
    error_class: String,
    requests: i64,
    input_tokens: i64,
    output_tokens: i64,
    cache_read_tokens: i64,
    cache_write_tokens: i64,
    cost_nanos: i64,
    latency_hist: String,
}

const ROLLUP_COLUMNS: &str = "start_ms, provider, model, key_id, status, error_class, requests, \
    input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_nanos, latency_hist";

async fn copy_rollups(from: &mut Tx, to: &mut Tx, table: &str) -> Result<u64, StoreError> {
    const KEY: &str = "start_ms, provider, model, key_id, status, error_class";
    let first = format!("SELECT {ROLLUP_COLUMNS} FROM {table} ORDER BY {KEY} LIMIT $1");
    let next = format!(
        "SELECT {ROLLUP_COLUMNS} FROM {table} WHERE ({KEY}) > ($2, $3, $4, $5, $6, $7) \
         ORDER BY {KEY} LIMIT $1"
    );
    let insert = format!("INSERT INTO {table} ({ROLLUP_COLUMNS}) ");
    let mut after: Option<RollupRow> = None;
    let mut new_rows = 0;
    loop {
        let page: Vec<RollupRow> = on_tx!(&mut *from, |conn, Db| {
            match &after {
                None => {
                    sqlx::query_as::<_, RollupRow>(&first)
                        .bind(PAGE)
                        .fetch_all(&mut **conn)
                        .await
                }
                Some(a) => {
                    sqlx::query_as::<_, RollupRow>(&next)
                        .bind(PAGE)
                        .bind(a.start_ms)
                        .bind(&a.provider)
                        .bind(&a.model)
                        .bind(&a.key_id)
                        .bind(a.status)
                        .bind(&a.error_class)
                        .fetch_all(&mut **conn)
                        .await
                }
            }
        })?;
        if page.is_empty() {
            break;
        }
        new_rows += on_tx!(&mut *to, |conn, Db| {
            let mut query = QueryBuilder::<Db>::new(&insert);
            query.push_values(&page, |mut values, row| {
                values
                    .push_bind(row.start_ms)
                    .push_bind(row.provider.as_str())
                    .push_bind(row.model.as_str())
                    .push_bind(row.key_id.as_str())
                    .push_bind(row.status)
                    .push_bind(row.error_class.as_str())
                    .push_bind(row.requests)
                    .push_bind(row.input_tokens)
                    .push_bind(row.output_tokens)
                    .push_bind(row.cache_read_tokens)
                    .push_bind(row.cache_write_tokens)
                    .push_bind(row.cost_nanos)
                    .push_bind(row.latency_hist.as_str());
            });
            query.push(" ON CONFLICT DO NOTHING");
            query
                .build()
                .execute(&mut **conn)
                .await
                .map(|done| done.rows_affected())
        })?;
        after = page.into_iter().last();
    }
    Ok(new_rows)
}
