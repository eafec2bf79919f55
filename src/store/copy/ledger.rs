//! The usage ledger's part of a copy: the blocks of raw rows with their
//! ids, and the rollups as stored, only into an empty ledger (see `copy`'s notes).

use sqlx::QueryBuilder;

use super::{CopyError, PAGE, TableCopy, count};
use crate::store::usage::{ROLLUP_COLUMNS, StoredRollup};
use crate::store::{StoreError, Tx, on_tx};

const ROLLUP_TABLES: [&str; 3] = ["usage_daily", "usage_hourly", "usage_5min"];

/// The raw rows and the rollups, or nothing if an earlier copy brought
/// them (see `copy`'s notes).
pub(super) async fn copy_ledger(from: &mut Tx, to: &mut Tx) -> Result<Vec<TableCopy>, CopyError> {
    const ROWS: &str = "SELECT CAST(COALESCE(SUM(row_count), 0) AS BIGINT) FROM usage_blocks";
    let source_rows = count(from, ROWS, None).await?;
    let last_id = count(from, "SELECT COALESCE(MAX(id), 0) FROM usage_blocks", None).await?;
    let mut target_rows = count(to, ROWS, None).await?;
    for table in ROLLUP_TABLES {
        target_rows += count(to, &format!("SELECT COUNT(*) FROM {table}"), None).await?;
    }
    let copy = if target_rows == 0 {
        true
    } else if holds_the_source_blocks(from, to, last_id).await? {
        false
    } else {
        return Err(CopyError::LedgerNotEmpty { rows: target_rows });
    };
    let mut report = vec![TableCopy {
        table: "usage rows",
        source_rows: u64::try_from(source_rows).unwrap_or(0),
        new_rows: if copy {
            copy_blocks(from, to).await?
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

/// Whether the target's blocks up to the source's last id are the
/// source's: as many, and the last one the same.
async fn holds_the_source_blocks(
    from: &mut Tx,
    to: &mut Tx,
    last_id: i64,
) -> Result<bool, StoreError> {
    let up_to = "SELECT COUNT(*) FROM usage_blocks WHERE id <= $1";
    if count(to, up_to, Some(last_id)).await? != count(from, up_to, Some(last_id)).await? {
        return Ok(false);
    }
    Ok(block_of(from, last_id).await? == block_of(to, last_id).await?)
}

/// The bytes of block `id`.
async fn block_of(tx: &mut Tx, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
    let sql = "SELECT rows FROM usage_blocks WHERE id = $1";
    Ok(on_tx!(tx, |conn, Db| {
        sqlx::query_scalar::<_, Vec<u8>>(sql)
            .bind(id)
            .fetch_optional(&mut **conn)
            .await
    })?)
}

#[derive(sqlx::FromRow)]
struct StoredBlock {
    id: i64,
    first_at_ms: i64,
    last_at_ms: i64,
    row_count: i64,
    format: i64,
    rows: Vec<u8>,
}

/// Blocks per read: a block holds up to `block::MAX_ROWS` rows (hundreds
/// of KB), so a page of them stays a few MB.
const BLOCK_PAGE: i64 = 16;

/// Copies the blocks as stored, ids and all; returns the rows they hold.
async fn copy_blocks(from: &mut Tx, to: &mut Tx) -> Result<u64, StoreError> {
    const COLUMNS: &str = "id, first_at_ms, last_at_ms, row_count, format, rows";
    let select = format!("SELECT {COLUMNS} FROM usage_blocks WHERE id > $1 ORDER BY id LIMIT $2");
    // PostgreSQL generates the ids itself unless told to keep these.
    let overriding = match to {
        Tx::Postgres(_) => "OVERRIDING SYSTEM VALUE ",
        Tx::Sqlite(_) => "",
    };
    let insert = format!(
        "INSERT INTO usage_blocks ({COLUMNS}) {overriding}VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT DO NOTHING"
    );
    let mut after = 0_i64;
    let mut new_rows = 0;
    loop {
        let page: Vec<StoredBlock> = on_tx!(&mut *from, |conn, Db| {
            sqlx::query_as::<_, StoredBlock>(&select)
                .bind(after)
                .bind(BLOCK_PAGE)
                .fetch_all(&mut **conn)
                .await
        })?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for block in page {
            let added = on_tx!(&mut *to, |conn, Db| {
                sqlx::query(&insert)
                    .bind(block.id)
                    .bind(block.first_at_ms)
                    .bind(block.last_at_ms)
                    .bind(block.row_count)
                    .bind(block.format)
                    .bind(&block.rows)
                    .execute(&mut **conn)
                    .await
                    .map(|done| done.rows_affected())
            })?;
            if added > 0 {
                new_rows += u64::try_from(block.row_count).unwrap_or(0);
            }
        }
    }
    if let Tx::Postgres(conn) = to
        && new_rows > 0
    {
        // New blocks written on the target continue after the copied ids.
        sqlx::query(
            "SELECT setval(pg_get_serial_sequence('usage_blocks', 'id'), \
             (SELECT MAX(id) FROM usage_blocks))",
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
