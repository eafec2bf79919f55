//! The hourly rollups: a batch is summed per hour and dimension combination
//! in memory (`sum`), then each sum is added to its stored row (`add`).
//! Counts, tokens and cost are added by the upsert itself; a histogram
//! cannot be added in SQL, so the stored ones the batch touches are read
//! and merged first, inside the writer's IMMEDIATE transaction (no other
//! write can come between the read and the upsert).

use std::collections::{BTreeSet, HashMap};

use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::{MAX_PARAMS, hour_floor, int};
use crate::domain::{LatencyHistogram, UsageRow};
use crate::store::StoreError;

/// One rollup row's identity. '' stands for an unknown dimension, as in
/// the table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct RollupKey {
    hour_ms: i64,
    provider: String,
    model: String,
    key_id: String,
    status: i64,
    error_class: String,
}

/// What a batch adds to one rollup row.
#[derive(Debug, Default)]
pub(super) struct RollupDelta {
    requests: u64,
    input_tokens: u64,
    output_tokens: u64,
    cache_read_tokens: u64,
    cache_write_tokens: u64,
    cost_nanos: u64,
    latency: LatencyHistogram,
}

/// Sums `rows` per rollup row.
pub(super) fn sum(rows: &[UsageRow]) -> HashMap<RollupKey, RollupDelta> {
    let mut deltas: HashMap<RollupKey, RollupDelta> = HashMap::new();
    for row in rows {
        let key = RollupKey {
            hour_ms: hour_floor(row.at_ms),
            provider: row.provider.map(|p| p.as_str()).unwrap_or("").to_string(),
            model: row.model().unwrap_or("").to_string(),
            key_id: row.key_id.clone().unwrap_or_default(),
            status: i64::from(row.status),
            error_class: row.error_class.clone().unwrap_or_default(),
        };
        let delta = deltas.entry(key).or_default();
        delta.requests += 1;
        delta.input_tokens += row.usage.input_tokens;
        delta.output_tokens += row.usage.output_tokens;
        delta.cache_read_tokens += row.usage.cache_read_input_tokens;
        delta.cache_write_tokens += row.usage.cache_creation_input_tokens;
        delta.cost_nanos += row.cost_nanos;
        delta.latency.record(row.latency_us);
    }
    deltas
}

/// Columns of one `usage_hourly` upsert.
const COLUMNS: usize = 13;
const ROWS_PER_UPSERT: usize = MAX_PARAMS / COLUMNS;

/// Adds `deltas` to the stored rollups (creating the rows that are new).
pub(super) async fn add(
    conn: &mut SqliteConnection,
    mut deltas: HashMap<RollupKey, RollupDelta>,
) -> Result<(), StoreError> {
    merge_stored_histograms(conn, &mut deltas).await?;
    let deltas: Vec<(RollupKey, RollupDelta)> = deltas.into_iter().collect();
    for chunk in deltas.chunks(ROWS_PER_UPSERT) {
        let mut upsert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO usage_hourly (hour_ms, provider, model, key_id, status, error_class, \
             requests, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, \
             cost_nanos, latency_hist) ",
        );
        upsert.push_values(chunk, |mut values, (key, delta)| {
            values
                .push_bind(key.hour_ms)
                .push_bind(key.provider.as_str())
                .push_bind(key.model.as_str())
                .push_bind(key.key_id.as_str())
                .push_bind(key.status)
                .push_bind(key.error_class.as_str())
                .push_bind(int(delta.requests))
                .push_bind(int(delta.input_tokens))
                .push_bind(int(delta.output_tokens))
                .push_bind(int(delta.cache_read_tokens))
                .push_bind(int(delta.cache_write_tokens))
                .push_bind(int(delta.cost_nanos))
                .push_bind(delta.latency.encode());
        });
        // The histogram was merged with the stored one above, so it
        // replaces it; every other column adds.
        upsert.push(
            " ON CONFLICT (hour_ms, provider, model, key_id, status, error_class) DO UPDATE SET \
             requests = usage_hourly.requests + excluded.requests, \
             input_tokens = usage_hourly.input_tokens + excluded.input_tokens, \
             output_tokens = usage_hourly.output_tokens + excluded.output_tokens, \
             cache_read_tokens = usage_hourly.cache_read_tokens + excluded.cache_read_tokens, \
             cache_write_tokens = usage_hourly.cache_write_tokens + excluded.cache_write_tokens, \
             cost_nanos = usage_hourly.cost_nanos + excluded.cost_nanos, \
             latency_hist = excluded.latency_hist",
        );
        upsert.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Adds each stored histogram the batch touches to its delta's. Reads the
/// batch's hours whole (usually one or two): one query per hour instead of
/// one per rollup row.
async fn merge_stored_histograms(
    conn: &mut SqliteConnection,
    deltas: &mut HashMap<RollupKey, RollupDelta>,
) -> Result<(), StoreError> {
    let hours: BTreeSet<i64> = deltas.keys().map(|k| k.hour_ms).collect();
    for hour_ms in hours {
        let stored: Vec<(String, String, String, i64, String, String)> = sqlx::query_as(
            "SELECT provider, model, key_id, status, error_class, latency_hist \
             FROM usage_hourly WHERE hour_ms = ?",
        )
        .bind(hour_ms)
        .fetch_all(&mut *conn)
        .await?;
        for (provider, model, key_id, status, error_class, histogram) in stored {
            let key = RollupKey {
                hour_ms,
                provider,
                model,
                key_id,
                status,
                error_class,
            };
            if let Some(delta) = deltas.get_mut(&key)
                && !delta.latency.add_encoded(&histogram)
            {
                // Keeping the batch matters more than the damaged counts:
                // the row's histogram restarts from what could be read.
                tracing::warn!(
                    hour_ms,
                    "usage ledger: an unreadable rollup histogram was replaced"
                );
            }
        }
    }
    Ok(())
}
