//! The rollups, at two periods (`Level`): a batch is summed per period and
//! dimension combination in memory (`sum`), then each sum is added to its
//! stored row (`add`).
//! Counts, tokens and cost are added by the upsert itself; a histogram
//! cannot be added in SQL, so the stored ones the batch touches are read
//! and merged first, inside the writer's IMMEDIATE transaction (no other
//! write can come between the read and the upsert).

use std::collections::{BTreeSet, HashMap};

use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::{HOUR_MS, MAX_PARAMS, int};
use crate::domain::{LatencyHistogram, UsageRow};
use crate::store::StoreError;

/// A rollup table and the period its rows sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Level {
    pub table: &'static str,
    pub period_ms: i64,
}

/// Whole hours of a range are read here.
pub(super) const HOURLY: Level = Level {
    table: "usage_hourly",
    period_ms: HOUR_MS,
};

/// Whole five-minute slices of a range's partial first and last hours are
/// read here, so at most two partial slices come from the raw rows.
/// Without it, a day's range read a whole hour of raw rows (its two ends
/// add up to one hour), and SQLite's GROUP BY over that hour (~42,000 rows
/// at a million a day) took 170-250 ms on the 2-vCPU VM: more than the
/// budget for the whole answer.
pub(super) const FIVE_MINUTES: Level = Level {
    table: "usage_5min",
    period_ms: 5 * 60_000,
};

/// Every level the writer keeps, coarsest first.
pub(super) const LEVELS: [Level; 2] = [HOURLY, FIVE_MINUTES];

impl Level {
    /// The start of the period `at_ms` falls in.
    pub fn floor(self, at_ms: i64) -> i64 {
        at_ms.div_euclid(self.period_ms) * self.period_ms
    }
}

/// One rollup row's identity. '' stands for an unknown dimension, as in
/// the table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct RollupKey {
    start_ms: i64,
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

/// Sums `rows` per rollup row of `level`.
pub(super) fn sum(level: Level, rows: &[UsageRow]) -> HashMap<RollupKey, RollupDelta> {
    let mut deltas: HashMap<RollupKey, RollupDelta> = HashMap::new();
    for row in rows {
        let key = RollupKey {
            start_ms: level.floor(row.at_ms),
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

/// Columns of one rollup upsert.
const COLUMNS: usize = 13;
const ROWS_PER_UPSERT: usize = MAX_PARAMS / COLUMNS;

/// Adds `deltas` to the stored rollups of `level` (creating the rows that
/// are new).
pub(super) async fn add(
    conn: &mut SqliteConnection,
    level: Level,
    mut deltas: HashMap<RollupKey, RollupDelta>,
) -> Result<(), StoreError> {
    merge_stored_histograms(conn, level, &mut deltas).await?;
    let deltas: Vec<(RollupKey, RollupDelta)> = deltas.into_iter().collect();
    let table = level.table;
    for chunk in deltas.chunks(ROWS_PER_UPSERT) {
        let mut upsert = QueryBuilder::<Sqlite>::new(format!(
            "INSERT INTO {table} (start_ms, provider, model, key_id, status, error_class, \
             requests, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, \
             cost_nanos, latency_hist) "
        ));
        upsert.push_values(chunk, |mut values, (key, delta)| {
            values
                .push_bind(key.start_ms)
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
        upsert.push(format!(
            " ON CONFLICT (start_ms, provider, model, key_id, status, error_class) DO UPDATE SET \
             requests = {table}.requests + excluded.requests, \
             input_tokens = {table}.input_tokens + excluded.input_tokens, \
             output_tokens = {table}.output_tokens + excluded.output_tokens, \
             cache_read_tokens = {table}.cache_read_tokens + excluded.cache_read_tokens, \
             cache_write_tokens = {table}.cache_write_tokens + excluded.cache_write_tokens, \
             cost_nanos = {table}.cost_nanos + excluded.cost_nanos, \
             latency_hist = excluded.latency_hist"
        ));
        // Not cached unless full: see `write::insert_rows`.
        upsert
            .build()
            .persistent(chunk.len() == ROWS_PER_UPSERT)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Adds each stored histogram the batch touches to its delta's. Reads the
/// batch's periods whole (usually one or two): one query per period
/// instead of one per rollup row.
async fn merge_stored_histograms(
    conn: &mut SqliteConnection,
    level: Level,
    deltas: &mut HashMap<RollupKey, RollupDelta>,
) -> Result<(), StoreError> {
    let periods: BTreeSet<i64> = deltas.keys().map(|k| k.start_ms).collect();
    let select = format!(
        "SELECT provider, model, key_id, status, error_class, latency_hist \
         FROM {} WHERE start_ms = ?",
        level.table
    );
    for start_ms in periods {
        let stored: Vec<(String, String, String, i64, String, String)> = sqlx::query_as(&select)
            .bind(start_ms)
            .fetch_all(&mut *conn)
            .await?;
        for (provider, model, key_id, status, error_class, histogram) in stored {
            let key = RollupKey {
                start_ms,
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
                    table = level.table,
                    start_ms,
                    "usage ledger: an unreadable rollup histogram was replaced"
                );
            }
        }
    }
    Ok(())
}
