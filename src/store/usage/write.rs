//! Writing one batch of ledger rows: the raw rows with multi-row INSERTs
//! and their sums added to every rollup level, in one transaction, so the
//! tables always agree (a failed batch leaves none changed).

use sqlx::QueryBuilder;

use super::{int, rollup, statement_chunks};
use crate::domain::UsageRow;
use crate::domain::latency::bucket_of;
use crate::store::{Store, StoreError, Tx, on_tx};

/// Writes `rows` and adds them to the rollups, in one transaction.
pub async fn write_batch(store: &Store, rows: &[UsageRow]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    // Summed before the transaction: the write lock is held only for SQL.
    let deltas = rollup::sum_levels(rows);
    // The rollup step reads the stored histograms, then writes: no other
    // writer may come between (`begin_write`, `exclude_other_writers`).
    let mut tx = store.begin_write().await?;
    exclude_other_writers(&mut tx).await?;
    for chunk in statement_chunks(rows) {
        insert_rows(&mut tx, chunk).await?;
    }
    for (level, deltas) in deltas {
        rollup::add(&mut tx, level, deltas).await?;
    }
    tx.commit().await
}

/// An arbitrary constant naming the ledger's lock among advisory locks.
const LEDGER_LOCK: i64 = 0x6b65_7967_6174_6501;

/// Serialises the transactions that read rollup histograms and write them
/// back. SQLite's `BEGIN IMMEDIATE` already did: one writer at a time.
/// Several replicas share one PostgreSQL database, where two batches that
/// read the same stored histogram and each wrote back its own sum would
/// lose the other's counts: a transaction-scoped advisory lock makes them
/// take turns (a batch holds it for its few statements; counts and tokens
/// would add up in the upsert anyway).
pub(in crate::store) async fn exclude_other_writers(tx: &mut Tx) -> Result<(), StoreError> {
    if let Tx::Postgres(conn) = tx {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(LEDGER_LOCK)
            .execute(&mut **conn)
            .await?;
    }
    Ok(())
}

async fn insert_rows(tx: &mut Tx, rows: &[UsageRow]) -> Result<(), StoreError> {
    const INSERT: &str = "INSERT INTO usage_requests (at_ms, request_id, route, provider, \
         model_requested, model_answered, key_id, attempts, keys_tried, status, error_class, \
         input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, \
         cost_nanos, latency_us, latency_bucket, ttft_us, client_key, cache_scope, unpriced) ";
    on_tx!(tx, |conn, Db| {
        let mut insert = QueryBuilder::<Db>::new(INSERT);
        insert.push_values(rows, |mut values, row| {
            values
                .push_bind(row.at_ms)
                .push_bind(row.request_id.as_str())
                .push_bind(row.route)
                .push_bind(row.provider.map(|p| p.as_str()))
                .push_bind(row.model_requested.as_deref())
                .push_bind(row.model_answered.as_deref())
                .push_bind(row.key_id.as_deref())
                .push_bind(i64::from(row.attempts))
                // A list of strings always serialises.
                .push_bind(serde_json::to_string(&row.keys_tried).unwrap_or_default())
                .push_bind(i64::from(row.status))
                .push_bind(row.error_class.as_deref())
                .push_bind(int(row.usage.input_tokens))
                .push_bind(int(row.usage.output_tokens))
                .push_bind(int(row.usage.cache_read_input_tokens))
                .push_bind(int(row.usage.cache_creation_input_tokens))
                .push_bind(int(row.usage.reasoning_tokens))
                .push_bind(int(row.cost_nanos))
                .push_bind(int(row.latency_us))
                .push_bind(i64::from(bucket_of(row.latency_us)))
                .push_bind(row.ttft_us.map(int))
                .push_bind(row.client_key.as_deref())
                .push_bind(row.cache_scope.as_deref())
                .push_bind(row.unpriced);
        });
        // One of seven texts (see `statement_chunks`), so always cached.
        insert.build().execute(&mut **conn).await.map(|_| ())
    })?;
    Ok(())
}
