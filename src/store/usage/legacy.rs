//! Rows written before the ledger packed its raw rows into blocks
//! (migration 0009 for SQLite, 0006 for PostgreSQL): moved from
//! `usage_requests` into `usage_blocks` when the store opens, a block per
//! transaction, oldest first. The rollups already count these rows and are
//! left alone. A start that is cut short leaves the rest for the next.

use super::block::{self, KeysTried, RowFields};
use super::count;
use super::request_id::RequestId;
use super::write::{exclude_other_writers, insert_blocks};
use crate::store::{Store, StoreError, on_tx};

#[derive(sqlx::FromRow)]
struct LegacyRow {
    id: i64,
    at_ms: i64,
    request_id: String,
    route: String,
    provider: Option<String>,
    model_requested: Option<String>,
    model_answered: Option<String>,
    key_id: Option<String>,
    attempts: i64,
    /// A JSON array of key ids.
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
    ttft_us: Option<i64>,
    client_key: Option<String>,
    unpriced: bool,
    cache_scope: Option<String>,
}

impl LegacyRow {
    fn fields<'a>(&'a self, keys_tried: &'a [String]) -> RowFields<'a> {
        RowFields {
            at_ms: self.at_ms,
            request_id: RequestId::of(&self.request_id),
            route: &self.route,
            provider: self.provider.as_deref(),
            model_requested: self.model_requested.as_deref(),
            model_answered: self.model_answered.as_deref(),
            key_id: self.key_id.as_deref(),
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            keys_tried: KeysTried::Owned(keys_tried),
            status: u16::try_from(self.status).unwrap_or(u16::MAX),
            error_class: self.error_class.as_deref(),
            input_tokens: count(self.input_tokens),
            output_tokens: count(self.output_tokens),
            cache_read_tokens: count(self.cache_read_tokens),
            cache_write_tokens: count(self.cache_write_tokens),
            reasoning_tokens: count(self.reasoning_tokens),
            cost_nanos: count(self.cost_nanos),
            latency_us: count(self.latency_us),
            ttft_us: self.ttft_us.map(count),
            client_key: self.client_key.as_deref(),
            unpriced: self.unpriced,
            cache_scope: self.cache_scope.as_deref(),
        }
    }
}

/// Moves every row of `usage_requests` into blocks; returns how many.
pub async fn pack_legacy_rows(store: &Store) -> Result<u64, StoreError> {
    const SELECT: &str = "SELECT id, at_ms, request_id, route, provider, model_requested, \
         model_answered, key_id, attempts, keys_tried, status, error_class, input_tokens, \
         output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, cost_nanos, \
         latency_us, ttft_us, client_key, unpriced, cache_scope FROM usage_requests \
         ORDER BY id LIMIT $1";
    const DELETE: &str = "DELETE FROM usage_requests WHERE id <= $1";
    let mut moved = 0;
    loop {
        let mut tx = store.begin_write().await?;
        // Replicas starting together take turns; the second finds less.
        exclude_other_writers(&mut tx).await?;
        let rows: Vec<LegacyRow> = on_tx!(&mut tx, |conn, Db| {
            sqlx::query_as(SELECT)
                .bind(block::MAX_ROWS as i64)
                .fetch_all(&mut **conn)
                .await
        })?;
        let Some(last_id) = rows.last().map(|row| row.id) else {
            tx.rollback().await?;
            return Ok(moved);
        };
        // A list written by keygate always reads; else the row keeps none.
        let keys: Vec<Vec<String>> = rows
            .iter()
            .map(|row| serde_json::from_str(&row.keys_tried).unwrap_or_default())
            .collect();
        let fields: Vec<RowFields<'_>> = rows
            .iter()
            .zip(&keys)
            .map(|(row, keys)| row.fields(keys))
            .collect();
        insert_blocks(&mut tx, &[block::pack(&fields, 0)]).await?;
        on_tx!(&mut tx, |conn, Db| {
            sqlx::query(DELETE)
                .bind(last_id)
                .execute(&mut **conn)
                .await
                .map(|_| ())
        })?;
        tx.commit().await?;
        moved += rows.len() as u64;
    }
}
