//! The usage ledger's part of a copy: raw rows with their ids, and the
//! rollups as stored, only into an empty ledger (see `copy`'s notes).

use sqlx::QueryBuilder;

use super::{CopyError, PAGE, TableCopy, count};
use crate::store::usage::{ROLLUP_COLUMNS, StoredRollup};
use crate::store::{StoreError, Tx, on_tx};

const ROLLUP_TABLES: [&str; 3] = ["usage_daily", "usage_hourly", "usage_5min"];

/// The raw rows and the rollups, or nothing if an earlier copy brought
/// them (see `copy`'s notes).
pub(super) async fn copy_ledger(from: &mut Tx, to: &mut Tx) -> Result<Vec<TableCopy>, CopyError> {
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
    reasoning_tokens: i64,
    cost_nanos: i64,
    latency_us: i64,
    latency_bucket: i64,
    ttft_us: Option<i64>,
    client_key: Option<String>,
    unpriced: bool,
    cache_scope: Option<String>,
}

const RAW_COLUMNS: &str = "id, at_ms, request_id, route, provider, model_requested, \
    model_answered, key_id, attempts, keys_tried, status, error_class, input_tokens, \
    output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, cost_nanos, \
    latency_us, latency_bucket, ttft_us, client_key, cache_scope, unpriced";

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
                    .push_bind(row.reasoning_tokens)
                    .push_bind(row.cost_nanos)
                    .push_bind(row.latency_us)
                    .push_bind(row.latency_bucket)
                    .push_bind(row.ttft_us)
                    .push_bind(row.client_key.as_deref())
                    .push_bind(row.cache_scope.as_deref())
                    .push_bind(row.unpriced);
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

async fn copy_rollups(from: &mut Tx, to: &mut Tx, table: &str) -> Result<u64, StoreError> {
    const KEY: &str = "start_ms, provider, model, key_id, status, error_class";
    let first = format!("SELECT {ROLLUP_COLUMNS} FROM {table} ORDER BY {KEY} LIMIT $1");
    let next = format!(
        "SELECT {ROLLUP_COLUMNS} FROM {table} WHERE ({KEY}) > ($2, $3, $4, $5, $6, $7) \
         ORDER BY {KEY} LIMIT $1"
    );
    let insert = format!("INSERT INTO {table} ({ROLLUP_COLUMNS}) ");
    let mut after: Option<StoredRollup> = None;
    let mut new_rows = 0;
    loop {
        let page: Vec<StoredRollup> = on_tx!(&mut *from, |conn, Db| {
            match &after {
                None => {
                    sqlx::query_as::<_, StoredRollup>(&first)
                        .bind(PAGE)
                        .fetch_all(&mut **conn)
                        .await
                }
                Some(a) => {
                    sqlx::query_as::<_, StoredRollup>(&next)
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
                    .push_bind(row.reasoning_tokens)
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
