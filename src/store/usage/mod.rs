//! The usage ledger's tables (`migrations/sqlite/0003_usage_ledger.sql`,
//! `0004`, `0009`; `migrations/postgres/0001_schema.sql`, `0006`):
//! `usage_blocks`, the raw rows (one per client request) packed a write
//! at a time (`block`), and the rollups `usage_daily`, `usage_hourly` and
//! `usage_5min`, the same rows summed per UTC day (hour, five minutes) and
//! dimension combination (provider, model, key, status, error class) with
//! a latency histogram. `usage_requests`, where earlier versions kept one
//! database row per request, is emptied into blocks at start (`legacy`).
//!
//! The rollups exist so totals over a day or a month read a few thousand
//! rows instead of millions: `totals` answers whole days from the daily
//! rollups, whole hours of the partial days at a range's ends from the
//! hourly ones, whole five-minute slices of the partial hours from the
//! five-minute ones, and only the partial slices at its very ends
//! from the raw rows, so totals are exact for any range. All tables are
//! written in one transaction per batch (`write`), so they never disagree,
//! and pruned on the same day boundary (`prune`).
//!
//! - `batch`: rows packed into blocks and summed as they are recorded, and
//!   one write's blocks and sums.
//! - `block`: packing rows into a block and reading them back.
//! - `legacy`: packing the rows of `usage_requests`.
//! - `write`: writing a batch's blocks and adding its sums, in one
//!   transaction.
//! - `rollup`: the three levels; summing a batch per period and dimension.
//! - `rollup_store`: adding the sums to the stored rollups.
//! - `totals`: totals per group over a time range.
//! - `page`: raw rows, newest first, after a position.
//! - `prune`: deleting rows and rollups older than a cutoff.

pub mod batch;
pub mod block;
mod legacy;
pub mod page;
pub mod prune;
pub mod request_id;
mod rollup;
mod rollup_store;
pub mod totals;
pub mod write;

pub(in crate::store) use write::exclude_other_writers;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use sqlx::{Database, Encode, QueryBuilder, Type};

use crate::domain::{LatencyHistogram, ProviderKind};
use crate::store::{Store, StoreError, Tx, on_tx};

pub use legacy::pack_legacy_rows;
pub use page::{LedgerEntry, PagePosition, page};
pub use prune::{PruneStep, prune_requests, prune_rollups};
pub(in crate::store) use rollup::{ROLLUP_COLUMNS, StoredRollup};
pub use totals::totals;
pub use write::write_batch;

/// Fills a rollup level added to a ledger that already holds data (the
/// daily level, by migration 0004) from the next finer one, in one
/// transaction. Runs when the store opens, before any writer; does nothing
/// once the level has rows. Returns how many rows were written.
pub async fn backfill_rollups(store: &Store) -> Result<u64, StoreError> {
    let mut tx = store.begin_write().await?;
    write::exclude_other_writers(&mut tx).await?;
    let written = rollup::backfill(&mut tx, rollup::DAILY, rollup::HOURLY).await?;
    tx.commit().await?;
    Ok(written)
}

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// The start of the UTC day `at_ms` falls in.
pub fn day_floor(at_ms: i64) -> i64 {
    at_ms.div_euclid(DAY_MS) * DAY_MS
}

/// The start of the hour `at_ms` falls in.
pub fn hour_floor(at_ms: i64) -> i64 {
    at_ms.div_euclid(HOUR_MS) * HOUR_MS
}

/// Rows per multi-row statement (block INSERT, rollup SELECT and upsert).
/// Rows go in full statements of this many, then the rest in one statement
/// of the next power of two rows (`padded_chunks`), so only seven statement
/// texts per use ever exist and all stay in sqlx's cache of prepared
/// statements. With statements as long as a batch (hundreds of rows,
/// thousands of parameters) nearly every batch had a new length: SQLite
/// parsed a 20,000-parameter statement per batch, and a cached one held
/// megabytes. Rows one by one instead cost a round trip to sqlx's SQLite
/// thread each, and so did the rest cut into statements of 32, 16, 8, 4, 2
/// and 1 rows (with its blocks one by one, a batch of `keygate-bench`'s
/// traffic made 22 statements that way, 5 now).
const ROWS_PER_STATEMENT: usize = 64;

/// `items` in chunks of `ROWS_PER_STATEMENT`, each with the number of rows
/// its statement is written for: the chunk's length rounded up to a power
/// of two. The rows past the chunk's are NULLs (`push_padded_values`),
/// which the statement leaves out.
fn padded_chunks<T>(items: &[T]) -> impl Iterator<Item = (&[T], usize)> {
    items
        .chunks(ROWS_PER_STATEMENT)
        .map(|chunk| (chunk, chunk.len().next_power_of_two()))
}

/// `VALUES` rows for `chunk`, then rows of `columns` NULLs up to `rows`
/// (`padded_chunks`): a statement reading them skips the rows whose first
/// column is NULL (`WHERE v.column1 IS NOT NULL`, or a join that cannot
/// match a NULL).
fn push_padded_values<'q, 'a: 'q, DB, T>(
    builder: &mut QueryBuilder<'q, DB>,
    chunk: &'a [T],
    rows: usize,
    columns: usize,
    mut push_row: impl FnMut(&mut sqlx::query_builder::Separated<'_, 'q, DB, &'static str>, &'a T),
) where
    DB: Database,
{
    let padding = std::iter::repeat_n(None, rows.saturating_sub(chunk.len()));
    builder.push_values(
        chunk.iter().map(Some).chain(padding),
        |mut values, row| match row {
            Some(row) => push_row(&mut values, row),
            None => {
                for _ in 0..columns {
                    values.push("NULL");
                }
            }
        },
    );
}

#[cfg(test)]
#[test]
fn a_batch_is_cut_into_statements_of_a_few_sizes() {
    let sizes = |n: usize| -> Vec<(usize, usize)> {
        padded_chunks(&vec![0u8; n])
            .map(|(chunk, rows)| (chunk.len(), rows))
            .collect()
    };
    assert_eq!(sizes(0), []);
    assert_eq!(sizes(1), [(1, 1)]);
    assert_eq!(sizes(3), [(3, 4)]);
    assert_eq!(sizes(64), [(64, 64)]);
    assert_eq!(sizes(200), [(64, 64), (64, 64), (64, 64), (8, 8)]);
    assert_eq!(sizes(127), [(64, 64), (63, 64)]);
}

/// `n` as a stored integer (SQLite's INTEGER, PostgreSQL's BIGINT); no count or token sum comes near the limit,
/// and a saturated value is better than a failed batch.
fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A stored INTEGER that is a count; never negative when keygate wrote it.
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Which rows a query reads: those that arrived in `[from_ms, to_ms)`, of
/// one provider, model (the answering one, else the requested one) or key
/// when given.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageFilter {
    pub from_ms: i64,
    pub to_ms: i64,
    pub provider: Option<ProviderKind>,
    pub model: Option<String>,
    pub key: Option<String>,
}

impl UsageFilter {
    /// Whether a raw row passes the optional equalities (its time is
    /// checked by the caller).
    fn matches(&self, row: &block::RowFields<'_>) -> bool {
        self.provider
            .is_none_or(|p| row.provider == Some(p.as_str()))
            && self.model.as_deref().is_none_or(|m| row.model() == Some(m))
            && self.key.as_deref().is_none_or(|k| row.key_id == Some(k))
    }
}

/// What totals can be grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    Key,
    /// The cache scope each key has now (its own id when it has none).
    Scope,
    Model,
    Provider,
    Status,
    /// The UTC hour a request arrived in.
    Hour,
    /// The UTC day a request arrived on.
    Day,
}

impl Dimension {
    pub const ALL: [Dimension; 7] = [
        Dimension::Key,
        Dimension::Model,
        Dimension::Provider,
        Dimension::Status,
        Dimension::Hour,
        Dimension::Day,
        Dimension::Scope,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Key => "key",
            Dimension::Scope => "scope",
            Dimension::Model => "model",
            Dimension::Provider => "provider",
            Dimension::Status => "status",
            Dimension::Hour => "hour",
            Dimension::Day => "day",
        }
    }

    /// Whether its values are names (else numbers: a status or a time).
    fn is_name(self) -> bool {
        matches!(
            self,
            Dimension::Key | Dimension::Scope | Dimension::Model | Dimension::Provider
        )
    }

    /// Its value in a rollup row (of either level).
    fn rollup_sql(self) -> &'static str {
        match self {
            Dimension::Key => "key_id",
            Dimension::Scope => SCOPE_OF_KEY,
            Dimension::Model => "model",
            Dimension::Provider => "provider",
            Dimension::Status => "status",
            Dimension::Hour => "(start_ms / 3600000) * 3600000",
            Dimension::Day => "(start_ms / 86400000) * 86400000",
        }
    }

    /// Its value for a raw row, the same as the rollup's: `None` for an
    /// unknown name, the model by `UsageRow::model`'s rule.
    fn raw_value(self, row: &block::RowFields<'_>, scopes: &KeyScopes) -> DimValue {
        let name =
            |name: Option<&str>| DimValue::Name(name.filter(|n| !n.is_empty()).map(str::to_string));
        match self {
            Dimension::Key => name(row.key_id),
            Dimension::Scope => name(scopes.of(row.key_id)),
            Dimension::Model => name(row.model()),
            Dimension::Provider => name(row.provider),
            Dimension::Status => DimValue::Number(i64::from(row.status)),
            Dimension::Hour => DimValue::Number(hour_floor(row.at_ms)),
            Dimension::Day => DimValue::Number(day_floor(row.at_ms)),
        }
    }
}

/// A row's key's cache scope, looked up in `api_keys` (rollups and raw
/// rows keep only the key): a key's scope may change, and its usage
/// follows it. A key without a scope, or since deleted, is its own scope;
/// '' for no key.
const SCOPE_OF_KEY: &str = "COALESCE((SELECT scoped.cache_scope FROM api_keys scoped \
                            WHERE scoped.id = key_id), key_id, '')";

/// `SCOPE_OF_KEY` for raw rows: every key's scope, read once per query.
#[derive(Default)]
pub(super) struct KeyScopes(HashMap<String, String>);

impl KeyScopes {
    pub(super) async fn read(tx: &mut Tx) -> Result<Self, StoreError> {
        const SQL: &str = "SELECT id, cache_scope FROM api_keys WHERE cache_scope IS NOT NULL";
        let scoped: Vec<(String, String)> = on_tx!(tx, |conn, Db| {
            sqlx::query_as(SQL).fetch_all(&mut **conn).await
        })?;
        Ok(Self(scoped.into_iter().collect()))
    }

    fn of<'a>(&'a self, key_id: Option<&'a str>) -> Option<&'a str> {
        let key_id = key_id?;
        Some(self.0.get(key_id).map_or(key_id, String::as_str))
    }
}

impl FromStr for Dimension {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        Dimension::ALL
            .into_iter()
            .find(|d| d.as_str() == text)
            .ok_or(())
    }
}

/// One group's value on one dimension.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum DimValue {
    /// A key id, model or provider; `None` when the request had none (it
    /// was refused before one was known).
    Name(Option<String>),
    /// A status, or the start of an hour or day in ms since the epoch.
    Number(i64),
}

/// Token sums by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenTotals {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    /// Cache creation tokens.
    pub cache_write: u64,
    /// Of the output tokens, those spent reasoning (a part of `output`).
    pub reasoning: u64,
}

impl std::ops::AddAssign for TokenTotals {
    fn add_assign(&mut self, other: TokenTotals) {
        self.input += other.input;
        self.output += other.output;
        self.cache_read += other.cache_read;
        self.cache_write += other.cache_write;
        self.reasoning += other.reasoning;
    }
}

/// What one group of requests added up to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupTotals {
    pub requests: u64,
    /// Requests answered whole and successfully (`UsageRow::succeeded`).
    pub successes: u64,
    /// The other requests, by error class (`unclassified` for a failed
    /// request that carries none).
    pub errors: BTreeMap<String, u64>,
    pub tokens: TokenTotals,
    pub cost_nanos: u64,
    pub latency: LatencyHistogram,
}

/// The filter's optional equalities; `model` is the table's model column
/// or expression.
pub(super) fn push_filters<'a, DB: Database>(
    query: &mut QueryBuilder<'a, DB>,
    filter: &'a UsageFilter,
    model: &str,
) where
    &'a str: Encode<'a, DB> + Type<DB>,
{
    if let Some(provider) = filter.provider {
        query.push(" AND provider = ").push_bind(provider.as_str());
    }
    if let Some(wanted) = &filter.model {
        query
            .push(" AND ")
            .push(model)
            .push(" = ")
            .push_bind(wanted.as_str());
    }
    if let Some(key) = &filter.key {
        query.push(" AND key_id = ").push_bind(key.as_str());
    }
}

/// The error class counted for a failed row stored without one.
pub const UNCLASSIFIED: &str = "unclassified";

impl GroupTotals {
    /// Adds `other`'s requests to these (two groups folded into one).
    pub fn merge(&mut self, other: &GroupTotals) {
        self.requests += other.requests;
        self.successes += other.successes;
        for (class, count) in &other.errors {
            *self.errors.entry(class.clone()).or_default() += count;
        }
        self.tokens += other.tokens;
        self.cost_nanos += other.cost_nanos;
        self.latency.merge(&other.latency);
    }

    /// Counts `requests` rows of one status and error class ('' for none).
    fn add_outcome(&mut self, status: i64, error_class: &str, requests: u64) {
        self.requests += requests;
        if status < 400 && error_class.is_empty() {
            self.successes += requests;
        } else {
            let class = if error_class.is_empty() {
                UNCLASSIFIED
            } else {
                error_class
            };
            // Looked up first: the class is almost always there already.
            match self.errors.get_mut(class) {
                Some(n) => *n += requests,
                None => {
                    self.errors.insert(class.to_string(), requests);
                }
            }
        }
    }
}
