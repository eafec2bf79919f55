//! Totals per group over `[from, to)`: the whole hours inside the range are
//! read from `usage_hourly`, the partial hours at its ends from
//! `usage_requests` (summed in SQL per group, status, error class and
//! latency bucket). A range's cost is then a few thousand rollup rows plus
//! at most two hours of raw rows, whatever its length in rows, and the
//! totals are exact: the two sources cover disjoint times and were written
//! by the same transactions.

use std::collections::BTreeMap;

use futures::TryStreamExt;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use super::{
    DimValue, Dimension, GroupTotals, HOUR_MS, RAW_MODEL, UsageFilter, count, hour_floor,
    push_filters,
};
use crate::store::{Store, StoreError};

/// Groups in order of their values (by the first dimension, then the
/// second); one group with no values when `group_by` is empty and any row
/// matched.
pub async fn totals(
    store: &Store,
    filter: &UsageFilter,
    group_by: &[Dimension],
) -> Result<Vec<(Vec<DimValue>, GroupTotals)>, StoreError> {
    let mut groups = BTreeMap::new();
    let split = split(filter.from_ms, filter.to_ms);
    // One read transaction: both sources from the same snapshot, so a
    // batch committed meanwhile is counted in neither or both.
    let mut tx = store.pool().begin().await?;
    if let Some((from_hour, to_hour)) = split.whole_hours {
        fold_rollups(&mut tx, filter, (from_hour, to_hour), group_by, &mut groups).await?;
    }
    for range in split.partial {
        fold_raw(&mut tx, filter, range, group_by, &mut groups).await?;
    }
    tx.rollback().await?;
    Ok(groups.into_iter().collect())
}

/// `[from, to)` cut into whole hours and the partial hours around them.
#[derive(Debug, PartialEq)]
struct Split {
    /// `[first hour start, last hour end)`, when at least one whole hour fits.
    whole_hours: Option<(i64, i64)>,
    /// Ranges read from the raw rows.
    partial: Vec<(i64, i64)>,
}

fn split(from: i64, to: i64) -> Split {
    let first_whole = hour_floor(from + HOUR_MS - 1);
    let end_whole = hour_floor(to);
    if first_whole >= end_whole {
        return Split {
            whole_hours: None,
            partial: vec![(from, to)]
                .into_iter()
                .filter(|(a, b)| a < b)
                .collect(),
        };
    }
    Split {
        whole_hours: Some((first_whole, end_whole)),
        partial: [(from, first_whole), (end_whole, to)]
            .into_iter()
            .filter(|(a, b)| a < b)
            .collect(),
    }
}

type Groups = BTreeMap<Vec<DimValue>, GroupTotals>;

/// Selects each dimension's value as the first columns.
fn push_dimensions(query: &mut QueryBuilder<'_, Sqlite>, group_by: &[Dimension], raw: bool) {
    for dimension in group_by {
        query.push(if raw {
            dimension.raw_sql()
        } else {
            dimension.rollup_sql()
        });
        query.push(", ");
    }
}

/// The group a result row belongs to, from its first columns.
fn group_of(row: &SqliteRow, group_by: &[Dimension]) -> Result<Vec<DimValue>, sqlx::Error> {
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
/// requests` (at `first`) to `group`.
fn add_sums(group: &mut GroupTotals, row: &SqliteRow, first: usize) -> Result<(), sqlx::Error> {
    let at = |i: usize| -> Result<u64, sqlx::Error> { Ok(count(row.try_get(first + i)?)) };
    group.tokens.input += at(0)?;
    group.tokens.output += at(1)?;
    group.tokens.cache_read += at(2)?;
    group.tokens.cache_write += at(3)?;
    group.cost_nanos += at(4)?;
    Ok(())
}

/// Whole hours from the rollups. Rows are folded here rather than grouped
/// in SQL because their histograms can only be added in Rust.
async fn fold_rollups(
    conn: &mut SqliteConnection,
    filter: &UsageFilter,
    (from_hour, to_hour): (i64, i64),
    group_by: &[Dimension],
    groups: &mut Groups,
) -> Result<(), StoreError> {
    let mut query = QueryBuilder::<Sqlite>::new("SELECT ");
    push_dimensions(&mut query, group_by, false);
    query.push(
        "status, error_class, requests, input_tokens, output_tokens, cache_read_tokens, \
         cache_write_tokens, cost_nanos, latency_hist FROM usage_hourly WHERE hour_ms >= ",
    );
    query
        .push_bind(from_hour)
        .push(" AND hour_ms < ")
        .push_bind(to_hour);
    push_filters(&mut query, filter, "model");
    let n = group_by.len();
    let mut rows = query.build().fetch(&mut *conn);
    while let Some(row) = rows.try_next().await? {
        let group = groups.entry(group_of(&row, group_by)?).or_default();
        let status: i64 = row.try_get(n)?;
        let error_class: &str = row.try_get(n + 1)?;
        group.add_outcome(status, error_class, count(row.try_get(n + 2)?));
        add_sums(group, &row, n + 3)?;
        let histogram: &str = row.try_get(n + 8)?;
        if !group.latency.add_encoded(histogram) {
            tracing::warn!("usage ledger: an unreadable rollup histogram was skipped");
        }
    }
    Ok(())
}

/// A partial hour from the raw rows, summed in SQL per group, outcome and
/// latency bucket.
async fn fold_raw(
    conn: &mut SqliteConnection,
    filter: &UsageFilter,
    (from, to): (i64, i64),
    group_by: &[Dimension],
    groups: &mut Groups,
) -> Result<(), StoreError> {
    let mut query = QueryBuilder::<Sqlite>::new("SELECT ");
    push_dimensions(&mut query, group_by, true);
    query.push(
        "status, COALESCE(error_class, ''), COUNT(*), SUM(input_tokens), SUM(output_tokens), \
         SUM(cache_read_tokens), SUM(cache_write_tokens), SUM(cost_nanos), latency_bucket \
         FROM usage_requests WHERE at_ms >= ",
    );
    query.push_bind(from).push(" AND at_ms < ").push_bind(to);
    push_filters(&mut query, filter, RAW_MODEL);
    // By position: the same in SQLite and PostgreSQL, and the expressions
    // are not repeated.
    let n = group_by.len();
    query.push(" GROUP BY ");
    for position in 1..=n + 2 {
        query.push(format!("{position}, "));
    }
    query.push(format!("{}", n + 9));
    let mut rows = query.build().fetch(&mut *conn);
    while let Some(row) = rows.try_next().await? {
        let group = groups.entry(group_of(&row, group_by)?).or_default();
        let status: i64 = row.try_get(n)?;
        let error_class: &str = row.try_get(n + 1)?;
        let requests = count(row.try_get(n + 2)?);
        group.add_outcome(status, error_class, requests);
        add_sums(group, &row, n + 3)?;
        let bucket: i64 = row.try_get(n + 8)?;
        group
            .latency
            .add(u16::try_from(bucket).unwrap_or(u16::MAX), requests);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = HOUR_MS;

    #[test]
    fn a_range_is_cut_into_whole_hours_and_partial_ends() {
        let t = 1_000 * H;
        assert_eq!(
            split(t + 600_000, t + 3 * H + 60_000),
            Split {
                whole_hours: Some((t + H, t + 3 * H)),
                partial: vec![(t + 600_000, t + H), (t + 3 * H, t + 3 * H + 60_000)],
            }
        );
        // Aligned ends: rollups only.
        assert_eq!(
            split(t, t + 2 * H),
            Split {
                whole_hours: Some((t, t + 2 * H)),
                partial: vec![],
            }
        );
        // Inside one hour, or across one boundary without a whole hour.
        assert_eq!(
            split(t + 5, t + 10),
            Split {
                whole_hours: None,
                partial: vec![(t + 5, t + 10)],
            }
        );
        assert_eq!(
            split(t + H / 2, t + H + H / 2),
            Split {
                whole_hours: None,
                partial: vec![(t + H / 2, t + H + H / 2)],
            }
        );
    }
}
