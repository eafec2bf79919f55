//! The rollups, at three periods (`Level`): a batch is summed per period and
//! dimension combination in memory (`BlockSums`, `levels`), then each sum is
//! added to its stored row (`rollup_store`).

use std::collections::HashMap;

use super::block::{NamePositions, RowFields};
use super::rollup_store::add_levels;
use super::{DAY_MS, HOUR_MS, count};
use crate::domain::LatencyHistogram;
use crate::store::{StoreError, Tx, on_tx};

/// A rollup table and the period its rows sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Level {
    pub table: &'static str,
    pub period_ms: i64,
}

/// Whole days of a range are read here. Without it, the dashboard's
/// 30-day view (totals per key per day and per model per day) read every
/// hourly row of the month: 1.1-1.6 s with 100 keys on the 2-vCPU VM.
pub(super) const DAILY: Level = Level {
    table: "usage_daily",
    period_ms: DAY_MS,
};

/// Whole hours of a range's partial first and last days are read here.
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
pub(super) const LEVELS: [Level; 3] = [DAILY, HOURLY, FIVE_MINUTES];

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
    pub(super) start_ms: i64,
    pub(super) provider: String,
    pub(super) model: String,
    pub(super) key_id: String,
    pub(super) status: i64,
    pub(super) error_class: String,
}

/// What a batch adds to one rollup row.
#[derive(Debug, Clone, Default)]
pub(super) struct RollupDelta {
    pub(super) requests: u64,
    pub(super) input_tokens: u64,
    pub(super) output_tokens: u64,
    pub(super) cache_read_tokens: u64,
    pub(super) cache_write_tokens: u64,
    pub(super) reasoning_tokens: u64,
    pub(super) cost_nanos: u64,
    pub(super) latency: LatencyHistogram,
}

impl RollupDelta {
    /// Counts one row.
    fn record(&mut self, row: &RowFields<'_>) {
        self.requests += 1;
        self.input_tokens += row.input_tokens;
        self.output_tokens += row.output_tokens;
        self.cache_read_tokens += row.cache_read_tokens;
        self.cache_write_tokens += row.cache_write_tokens;
        self.reasoning_tokens += row.reasoning_tokens;
        self.cost_nanos += row.cost_nanos;
        self.latency.record(row.latency_us);
    }

    /// Adds another sum.
    fn add(&mut self, other: &RollupDelta) {
        self.requests += other.requests;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_read_tokens += other.cache_read_tokens;
        self.cache_write_tokens += other.cache_write_tokens;
        self.reasoning_tokens += other.reasoning_tokens;
        self.cost_nanos += other.cost_nanos;
        self.latency.merge(&other.latency);
    }
}

/// A five-minute rollup row's identity by the positions of its names in
/// the block being written (`block::NamePositions`).
type PositionKey = (i64, NamePositions, u16);

/// The five-minute sums of the rows of one block as it is written, keyed
/// by name positions: a row costs one hash of a few integers, not of five
/// strings, and no allocation. `name_into` gives the sums their names once
/// the block is done.
#[derive(Default)]
pub(super) struct BlockSums {
    // foldhash is a few times cheaper than SipHash; the keys are integers
    // keygate assigned, and a map holds one block's (at most `MAX_ROWS`).
    sums: HashMap<PositionKey, RollupDelta, foldhash::fast::RandomState>,
}

impl BlockSums {
    /// Counts `row`, whose names are at `names` in its block.
    pub fn record(&mut self, row: &RowFields<'_>, names: NamePositions) {
        let key = (FIVE_MINUTES.floor(row.at_ms), names, row.status);
        self.sums.entry(key).or_default().record(row);
    }

    /// Adds the sums to `into` under their names (`name` of a position;
    /// "" for none). Two positions can share a name (an empty name and
    /// none are both ""), so sums are added, never replaced.
    pub fn name_into<'n>(
        self,
        name: impl Fn(u32) -> &'n str,
        into: &mut HashMap<RollupKey, RollupDelta>,
    ) {
        for ((start_ms, names, status), delta) in self.sums {
            let key = RollupKey {
                start_ms,
                provider: name(names.provider).to_string(),
                model: name(names.model).to_string(),
                key_id: name(names.key_id).to_string(),
                status: i64::from(status),
                error_class: name(names.error_class).to_string(),
            };
            into.entry(key).or_default().add(&delta);
        }
    }
}

/// The five-minute sums of a batch and the coarser ones made from them,
/// coarsest first (as `LEVELS`): each coarser level is summed from the
/// finer sums, of which a batch has few.
pub(super) fn levels(
    five_minutes: HashMap<RollupKey, RollupDelta>,
) -> [(Level, HashMap<RollupKey, RollupDelta>); 3] {
    let hourly = coarsen(&five_minutes, HOURLY);
    let daily = coarsen(&hourly, DAILY);
    [
        (DAILY, daily),
        (HOURLY, hourly),
        (FIVE_MINUTES, five_minutes),
    ]
}

/// `finer` sums added up per period of `level` (whose periods are whole
/// multiples of the finer ones).
fn coarsen(
    finer: &HashMap<RollupKey, RollupDelta>,
    level: Level,
) -> HashMap<RollupKey, RollupDelta> {
    let mut coarse: HashMap<RollupKey, RollupDelta> = HashMap::new();
    for (key, delta) in finer {
        let key = RollupKey {
            start_ms: level.floor(key.start_ms),
            ..key.clone()
        };
        coarse.entry(key).or_default().add(delta);
    }
    coarse
}

/// Sums `fine`'s rows into `coarse` when `coarse` is empty and `fine` is
/// not: the state right after a level is added to a ledger that already
/// holds data (migration 0004 added the daily level). From then on the
/// writer keeps every level, and the pruner cuts them on the same day
/// boundary, so the two are empty together or not at all. Reads one
/// coarse period at a time, so memory stays that of one period's rows.
/// Returns how many coarse rows were written.
pub(super) async fn backfill(tx: &mut Tx, coarse: Level, fine: Level) -> Result<u64, StoreError> {
    let has_rows = |level: Level| format!("SELECT EXISTS (SELECT 1 FROM {})", level.table);
    let (coarse_sql, fine_sql) = (has_rows(coarse), has_rows(fine));
    let (coarse_has, fine_has): (bool, bool) = on_tx!(&mut *tx, |conn, Db| {
        let coarse_has = sqlx::query_scalar(&coarse_sql)
            .fetch_one(&mut **conn)
            .await?;
        let fine_has = sqlx::query_scalar(&fine_sql).fetch_one(&mut **conn).await?;
        Ok::<_, sqlx::Error>((coarse_has, fine_has))
    })?;
    if coarse_has || !fine_has {
        return Ok(0);
    }
    let periods = format!(
        "SELECT DISTINCT (start_ms / {p}) * {p} FROM {} ORDER BY 1",
        fine.table,
        p = coarse.period_ms
    );
    let periods: Vec<i64> = on_tx!(&mut *tx, |conn, Db| {
        sqlx::query_scalar(&periods).fetch_all(&mut **conn).await
    })?;
    let select = format!(
        "SELECT {ROLLUP_COLUMNS} FROM {} WHERE start_ms >= $1 AND start_ms < $2",
        fine.table
    );
    let mut written = 0;
    for start_ms in periods {
        let rows: Vec<StoredRollup> = on_tx!(&mut *tx, |conn, Db| {
            sqlx::query_as(&select)
                .bind(start_ms)
                .bind(start_ms + coarse.period_ms)
                .fetch_all(&mut **conn)
                .await
        })?;
        let mut deltas: HashMap<RollupKey, RollupDelta> = HashMap::new();
        for row in rows {
            let key = RollupKey {
                start_ms,
                provider: row.provider,
                model: row.model,
                key_id: row.key_id,
                status: row.status,
                error_class: row.error_class,
            };
            let delta = deltas.entry(key).or_default();
            delta.requests += count(row.requests);
            delta.input_tokens += count(row.input_tokens);
            delta.output_tokens += count(row.output_tokens);
            delta.cache_read_tokens += count(row.cache_read_tokens);
            delta.cache_write_tokens += count(row.cache_write_tokens);
            delta.reasoning_tokens += count(row.reasoning_tokens);
            delta.cost_nanos += count(row.cost_nanos);
            if !delta.latency.add_encoded(&row.latency_hist) {
                tracing::warn!(
                    table = fine.table,
                    start_ms,
                    "usage ledger: an unreadable rollup histogram was skipped"
                );
            }
        }
        written += deltas.len() as u64;
        add_levels(tx, &mut [(coarse, deltas)]).await?;
    }
    Ok(written)
}

/// A stored rollup row, as `backfill` and `store copy` read it.
#[derive(sqlx::FromRow)]
pub(in crate::store) struct StoredRollup {
    pub start_ms: i64,
    pub provider: String,
    pub model: String,
    pub key_id: String,
    pub status: i64,
    pub error_class: String,
    pub requests: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub reasoning_tokens: i64,
    pub cost_nanos: i64,
    pub latency_hist: String,
}

/// The columns of a rollup table, in `StoredRollup`'s order.
pub(in crate::store) const ROLLUP_COLUMNS: &str = "start_ms, provider, model, key_id, status, \
    error_class, requests, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, \
    reasoning_tokens, cost_nanos, latency_hist";
