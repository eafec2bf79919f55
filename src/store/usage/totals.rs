//! Totals per group over `[from, to)`: the whole days inside the range are
//! read from `usage_daily`, the whole hours of the partial days at its ends
//! from `usage_hourly`, the whole five-minute slices of the partial hours
//! from `usage_5min`, and the partial slices at its very ends from the raw
//! rows (`usage_blocks`, unpacked and summed in Rust). A range's cost is
//! then its days' rollup rows, up to two days of hourly ones, up to two
//! hours of five-minute ones and at most ten minutes of raw rows, however
//! many rows it covers; and the totals are exact: the sources cover
//! disjoint times and were written by the same transactions.

use std::collections::BTreeMap;

use futures::TryStreamExt;
use sqlx::{ColumnIndex, Database, Decode, QueryBuilder, Row, Type};

use super::block::{RowFields, Unpacked};
use super::rollup::{LEVELS, Level};
use super::{
    DAY_MS, DimValue, Dimension, GroupTotals, HOUR_MS, KeyScopes, UsageFilter, count, push_filters,
};
use crate::store::{Store, StoreError, Tx, on_tx};

/// Groups in order of their values (by the first dimension, then the
/// second); one group with no values when `group_by` is empty and any row
/// matched.
pub async fn totals(
    store: &Store,
    filter: &UsageFilter,
    group_by: &[Dimension],
) -> Result<Vec<(Vec<DimValue>, GroupTotals)>, StoreError> {
    let mut groups = BTreeMap::new();
    // One read transaction: every source from the same snapshot, so a
    // batch committed meanwhile is counted in all or none.
    let mut tx = store.begin_snapshot().await?;
    let sources = plan(filter.from_ms, filter.to_ms, group_by);
    // Raw rows keep only their key: its scope is looked up, once for both
    // ends of the range.
    let reads_raw = sources.iter().any(|s| matches!(s, Source::Raw(_)));
    let scopes = if reads_raw && group_by.contains(&Dimension::Scope) {
        KeyScopes::read(&mut tx).await?
    } else {
        KeyScopes::default()
    };
    for source in sources {
        match source {
            Source::Rollup(level, range) => {
                fold_rollups(&mut tx, level, filter, range, group_by, &mut groups).await?;
            }
            Source::Raw(range) => {
                let raw = RawSlice {
                    range,
                    group_by,
                    scopes: &scopes,
                };
                fold_raw(&mut tx, filter, raw, &mut groups).await?;
            }
        }
    }
    tx.rollback().await?;
    Ok(groups.into_iter().collect())
}

/// Where one part of a range is read from: `[from, to)` of a rollup level
/// (whole periods) or of the raw rows.
#[derive(Debug, PartialEq)]
enum Source {
    Rollup(Level, (i64, i64)),
    Raw((i64, i64)),
}

/// `[from, to)` cut into the whole periods of the coarsest level that fit,
/// its ends cut the same way at the next level, and what is left read raw.
/// Levels coarser than a time grouping are skipped: a daily row cannot say
/// which hour its requests came in.
fn plan(from: i64, to: i64, group_by: &[Dimension]) -> Vec<Source> {
    let finest_grouping = group_by
        .iter()
        .filter_map(|dimension| match dimension {
            Dimension::Hour => Some(HOUR_MS),
            Dimension::Day => Some(DAY_MS),
            _ => None,
        })
        .min();
    let levels: Vec<Level> = LEVELS
        .into_iter()
        .filter(|level| finest_grouping.is_none_or(|period| level.period_ms <= period))
        .collect();
    let mut sources = Vec::new();
    cut(from, to, &levels, &mut sources);
    sources
}

fn cut(from: i64, to: i64, levels: &[Level], sources: &mut Vec<Source>) {
    if from >= to {
        return;
    }
    let Some((level, finer)) = levels.split_first() else {
        sources.push(Source::Raw((from, to)));
        return;
    };
    let first_whole = level.floor(from.saturating_add(level.period_ms - 1));
    let end_whole = level.floor(to);
    if first_whole >= end_whole {
        cut(from, to, finer, sources);
        return;
    }
    cut(from, first_whole, finer, sources);
    sources.push(Source::Rollup(*level, (first_whole, end_whole)));
    cut(end_whole, to, finer, sources);
}

type Groups = BTreeMap<Vec<DimValue>, GroupTotals>;

/// Selects each dimension's value as the first columns.
fn push_dimensions<DB: Database>(query: &mut QueryBuilder<'_, DB>, group_by: &[Dimension]) {
    for dimension in group_by {
        query.push(dimension.rollup_sql());
        query.push(", ");
    }
}

/// The group a result row belongs to, from its first columns.
fn group_of<R>(row: &R, group_by: &[Dimension]) -> Result<Vec<DimValue>, sqlx::Error>
where
    R: Row,
    usize: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
{
    group_by
        .iter()
        .enumerate()
        .map(|(i, dimension)| {
            Ok(if dimension.is_name() {
                let name: String = row.try_get(i)?;
                DimValue::Name(Some(name).filter(|n| !n.is_empty()))
            } else {
                DimValue::Number(row.try_get(i)?)
            })
        })
        .collect()
}

/// Adds the token and cost columns that follow `status, error_class,
/// requests` (at `first`) to `group`: `SUM_COLUMNS` of them.
fn add_sums<R>(group: &mut GroupTotals, row: &R, first: usize) -> Result<(), sqlx::Error>
where
    R: Row,
    usize: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let at = |i: usize| -> Result<u64, sqlx::Error> { Ok(count(row.try_get(first + i)?)) };
    group.tokens.input += at(0)?;
    group.tokens.output += at(1)?;
    group.tokens.cache_read += at(2)?;
    group.tokens.cache_write += at(3)?;
    group.tokens.reasoning += at(4)?;
    group.cost_nanos += at(5)?;
    Ok(())
}

/// How many columns `add_sums` reads.
const SUM_COLUMNS: usize = 6;

/// Whole periods from one rollup level. Rows are folded here rather than
/// grouped in SQL because their histograms can only be added in Rust.
async fn fold_rollups(
    tx: &mut Tx,
    level: Level,
    filter: &UsageFilter,
    (from, to): (i64, i64),
    group_by: &[Dimension],
    groups: &mut Groups,
) -> Result<(), StoreError> {
    let columns = format!(
        "status, error_class, requests, input_tokens, output_tokens, cache_read_tokens, \
         cache_write_tokens, reasoning_tokens, cost_nanos, latency_hist FROM {} \
         WHERE start_ms >= ",
        level.table
    );
    let n = group_by.len();
    on_tx!(tx, |conn, Db| {
        let mut query = QueryBuilder::<Db>::new("SELECT ");
        push_dimensions(&mut query, group_by);
        query.push(&columns);
        query.push_bind(from).push(" AND start_ms < ").push_bind(to);
        push_filters(&mut query, filter, "model");
        let mut rows = query.build().fetch(&mut **conn);
        while let Some(row) = rows.try_next().await? {
            let group = groups.entry(group_of(&row, group_by)?).or_default();
            let status: i64 = row.try_get(n)?;
            let error_class: &str = row.try_get(n + 1)?;
            group.add_outcome(status, error_class, count(row.try_get(n + 2)?));
            add_sums(group, &row, n + 3)?;
            let histogram: &str = row.try_get(n + 3 + SUM_COLUMNS)?;
            if !group.latency.add_encoded(histogram) {
                tracing::warn!("usage ledger: an unreadable rollup histogram was skipped");
            }
        }
    });
    Ok(())
}

/// A partial five-minute slice to read from the raw rows, and how its rows
/// are grouped.
struct RawSlice<'a> {
    range: (i64, i64),
    group_by: &'a [Dimension],
    scopes: &'a KeyScopes,
}

/// A partial five-minute slice from the raw rows: the blocks that overlap
/// it, unpacked, and their rows in the slice added to their groups.
async fn fold_raw(
    tx: &mut Tx,
    filter: &UsageFilter,
    slice: RawSlice<'_>,
    groups: &mut Groups,
) -> Result<(), StoreError> {
    const BLOCKS: &str = "SELECT id, format, rows FROM usage_blocks \
         WHERE last_at_ms >= $1 AND first_at_ms < $2";
    let RawSlice {
        range: (from, to),
        group_by,
        scopes,
    } = slice;
    on_tx!(tx, |conn, Db| {
        let mut blocks = sqlx::query_as::<_, (i64, i64, Vec<u8>)>(BLOCKS)
            .bind(from)
            .bind(to)
            .fetch(&mut **conn);
        while let Some((block_id, format, bytes)) = blocks.try_next().await? {
            let Some(rows) = Unpacked::read_or_skip(block_id, format, &bytes) else {
                continue;
            };
            for (_, row) in rows.rows(block_id) {
                if row.at_ms < from || row.at_ms >= to || !filter.matches(row) {
                    continue;
                }
                let values = group_by
                    .iter()
                    .map(|dimension| dimension.raw_value(row, scopes))
                    .collect();
                add_raw_row(groups.entry(values).or_default(), row);
            }
        }
        Ok::<_, sqlx::Error>(())
    })?;
    Ok(())
}

fn add_raw_row(group: &mut GroupTotals, row: &RowFields<'_>) {
    group.add_outcome(i64::from(row.status), row.error_class.unwrap_or(""), 1);
    group.tokens.input += row.input_tokens;
    group.tokens.output += row.output_tokens;
    group.tokens.cache_read += row.cache_read_tokens;
    group.tokens.cache_write += row.cache_write_tokens;
    group.tokens.reasoning += row.reasoning_tokens;
    group.cost_nanos += row.cost_nanos;
    group.latency.record(row.latency_us);
}

#[cfg(test)]
mod tests {
    use super::super::rollup::{DAILY, FIVE_MINUTES, HOURLY};
    use super::*;

    const H: i64 = HOUR_MS;
    const M: i64 = 60_000;

    #[test]
    fn a_range_is_read_from_the_coarsest_whole_periods_that_fit() {
        let t = 1_000 * H;
        assert_eq!(
            plan(t + 7 * M, t + 3 * H + 12 * M + 5, &[]),
            [
                Source::Raw((t + 7 * M, t + 10 * M)),
                Source::Rollup(FIVE_MINUTES, (t + 10 * M, t + H)),
                Source::Rollup(HOURLY, (t + H, t + 3 * H)),
                Source::Rollup(FIVE_MINUTES, (t + 3 * H, t + 3 * H + 10 * M)),
                Source::Raw((t + 3 * H + 10 * M, t + 3 * H + 12 * M + 5)),
            ]
        );
        // Whole days inside: read per day, their ends per hour.
        let d = 500 * DAY_MS;
        assert_eq!(
            plan(d + 2 * H + 5 * M, d + 3 * DAY_MS + H, &[]),
            [
                Source::Rollup(FIVE_MINUTES, (d + 2 * H + 5 * M, d + 3 * H)),
                Source::Rollup(HOURLY, (d + 3 * H, d + DAY_MS)),
                Source::Rollup(DAILY, (d + DAY_MS, d + 3 * DAY_MS)),
                Source::Rollup(HOURLY, (d + 3 * DAY_MS, d + 3 * DAY_MS + H)),
            ]
        );
        // Aligned ends: rollups only.
        assert_eq!(
            plan(t, t + 2 * H, &[]),
            [Source::Rollup(HOURLY, (t, t + 2 * H))]
        );
        // Inside one slice; across slices without a whole hour.
        assert_eq!(plan(t + 5, t + 10, &[]), [Source::Raw((t + 5, t + 10))]);
        assert_eq!(
            plan(t + 50 * M, t + H + 20 * M, &[]),
            [Source::Rollup(FIVE_MINUTES, (t + 50 * M, t + H + 20 * M)),]
        );
        // Grouped by hour, whole days are read per hour.
        assert_eq!(
            plan(d, d + 2 * DAY_MS, &[Dimension::Key, Dimension::Hour]),
            [Source::Rollup(HOURLY, (d, d + 2 * DAY_MS))]
        );
        assert_eq!(
            plan(d, d + 2 * DAY_MS, &[Dimension::Day]),
            [Source::Rollup(DAILY, (d, d + 2 * DAY_MS))]
        );
    }
}
