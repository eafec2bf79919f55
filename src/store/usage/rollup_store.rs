//! Adding sums to the stored rollups (`rollup`) in few statements: a
//! batch reads the stored histograms of every level it touches in one
//! statement, then adds to each level in one (up to `ROWS_PER_STATEMENT`
//! sums a statement, padded to a power of two: `padded_chunks`).
//!
//! Why: each statement is a round trip to sqlx's SQLite thread, two
//! thread wake-ups or more. With the sums cut into statements of 32, 16,
//! 8, 4, 2 and 1 rows, one level at a time, a batch of `keygate-bench`'s
//! traffic (three keys) took twelve statements for its rollups; now four.
//! (Sending the sums as one JSON array, unpacked by SQLite's `json_each`,
//! took fewer statements still but more CPU: SQLite parsed each row's
//! array again for each of its fourteen fields.)
//! Counts, tokens and cost are added by the upsert itself; a histogram
//! cannot be added in SQL, so the stored ones are read and merged first,
//! inside the writer's transaction (`write::exclude_other_writers`).

use std::collections::HashMap;

use sqlx::QueryBuilder;

use super::rollup::{Level, RollupDelta, RollupKey};
use super::{int, padded_chunks, push_padded_values};
use crate::store::{StoreError, Tx, on_tx};

/// One level's sums.
pub(super) type LevelSums = (Level, HashMap<RollupKey, RollupDelta>);

/// Adds each level's sums to its stored rollups (creating the rows that
/// are new). The sums' histograms are merged with the stored ones on the
/// way, so a caller that may try again passes a copy.
pub(super) async fn add_levels(tx: &mut Tx, levels: &mut [LevelSums]) -> Result<(), StoreError> {
    merge_stored_histograms(tx, levels).await?;
    for (level, deltas) in levels.iter() {
        upsert(tx, *level, deltas).await?;
    }
    Ok(())
}

/// A stored histogram as read: the level's place in the batch, the key,
/// the histogram.
type StoredHistogram = (i64, i64, String, String, String, i64, String, String);

/// Adds each stored histogram the levels' sums touch to its sum's. Reads
/// only the rows touched, each looked up by its primary key: a period can
/// hold thousands of rows (a day of every key, model and outcome), and
/// reading whole periods made each batch cost in proportion to the day's
/// variety, not its own.
async fn merge_stored_histograms(tx: &mut Tx, levels: &mut [LevelSums]) -> Result<(), StoreError> {
    // Each key with its level's place (an i64, as the database returns it).
    let wanted: Vec<(i64, &RollupKey)> = levels
        .iter()
        .zip(0_i64..)
        .flat_map(|((_, deltas), place)| deltas.keys().map(move |key| (place, key)))
        .collect();
    let select_tail = select_tail(levels.iter().map(|(level, _)| level.table));
    let mut stored: Vec<StoredHistogram> = Vec::new();
    for (chunk, rows) in padded_chunks(&wanted) {
        let found: Vec<StoredHistogram> = on_tx!(&mut *tx, |conn, Db| {
            let mut select = QueryBuilder::<Db>::new(
                "WITH wanted (place, start_ms, provider, model, key_id, status, error_class) AS (",
            );
            push_padded_values(&mut select, chunk, rows, 7, |values, (place, key)| {
                values
                    .push_bind(*place)
                    .push_bind(key.start_ms)
                    .push_bind(key.provider.as_str())
                    .push_bind(key.model.as_str())
                    .push_bind(key.key_id.as_str())
                    .push_bind(key.status)
                    .push_bind(key.error_class.as_str());
            });
            select.push(&select_tail);
            select.build_query_as().fetch_all(&mut **conn).await
        })?;
        stored.extend(found);
    }
    for (place, start_ms, provider, model, key_id, status, error_class, histogram) in stored {
        let Some((level, deltas)) = usize::try_from(place).ok().and_then(|p| levels.get_mut(p))
        else {
            continue;
        };
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
    Ok(())
}

/// The rest of the statement reading the stored histograms of the
/// `wanted` keys from `tables` (the levels, in their places' order). The
/// keys drive the loop (SQLite's `CROSS JOIN` keeps that order), each one
/// looked up by the primary key; the other order would scan the tables.
/// A padding row's NULLs match nothing.
fn select_tail<'t>(tables: impl Iterator<Item = &'t str>) -> String {
    let arms: Vec<String> = tables
        .zip(0..)
        .map(|(table, place)| {
            format!(
                "SELECT w.place, t.start_ms, t.provider, t.model, t.key_id, t.status, \
                 t.error_class, t.latency_hist FROM wanted AS w CROSS JOIN {table} AS t \
                 WHERE w.place = {place} AND t.start_ms = w.start_ms \
                 AND t.provider = w.provider AND t.model = w.model AND t.key_id = w.key_id \
                 AND t.status = w.status AND t.error_class = w.error_class"
            )
        })
        .collect();
    format!(") {}", arms.join(" UNION ALL "))
}

/// Adds `deltas` to `level`'s stored rows, or inserts them. Their
/// histograms were merged with the stored ones (`merge_stored_histograms`),
/// so they replace them; every other column adds.
async fn upsert(
    tx: &mut Tx,
    level: Level,
    deltas: &HashMap<RollupKey, RollupDelta>,
) -> Result<(), StoreError> {
    let deltas: Vec<(&RollupKey, &RollupDelta)> = deltas.iter().collect();
    let table = level.table;
    let head = format!(
        "INSERT INTO {table} (start_ms, provider, model, key_id, status, error_class, \
         requests, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, \
         reasoning_tokens, cost_nanos, latency_hist) SELECT * FROM ("
    );
    // `WHERE`: padding rows are left out (and SQLite's parser needs a WHERE
    // before an upsert's ON CONFLICT).
    let tail = format!(
        ") AS v WHERE v.column1 IS NOT NULL \
         ON CONFLICT (start_ms, provider, model, key_id, status, error_class) DO UPDATE SET \
         requests = {table}.requests + excluded.requests, \
         input_tokens = {table}.input_tokens + excluded.input_tokens, \
         output_tokens = {table}.output_tokens + excluded.output_tokens, \
         cache_read_tokens = {table}.cache_read_tokens + excluded.cache_read_tokens, \
         cache_write_tokens = {table}.cache_write_tokens + excluded.cache_write_tokens, \
         reasoning_tokens = {table}.reasoning_tokens + excluded.reasoning_tokens, \
         cost_nanos = {table}.cost_nanos + excluded.cost_nanos, \
         latency_hist = excluded.latency_hist"
    );
    for (chunk, rows) in padded_chunks(&deltas) {
        on_tx!(&mut *tx, |conn, Db| {
            let mut upsert = QueryBuilder::<Db>::new(&head);
            push_padded_values(&mut upsert, chunk, rows, 14, |values, (key, delta)| {
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
                    .push_bind(int(delta.reasoning_tokens))
                    .push_bind(int(delta.cost_nanos))
                    .push_bind(delta.latency.encode());
            });
            upsert.push(&tail);
            // One of seven texts per level (see `padded_chunks`): cached.
            upsert.build().execute(&mut **conn).await.map(|_| ())
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::rollup::LEVELS;
    use super::*;
    use crate::store::Store;

    /// The other join order would read whole rollup tables per batch.
    #[tokio::test]
    async fn sqlite_looks_each_wanted_key_up_by_the_primary_key() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/ledger.db", dir.path().display());
        let store = Store::connect(&url).await.unwrap();
        let mut tx = store.begin_write().await.unwrap();
        let select = format!(
            "EXPLAIN QUERY PLAN WITH wanted (place, start_ms, provider, model, key_id, status, \
             error_class) AS (VALUES (0, 0, 'p', 'm', 'k', 200, ''), \
             (NULL, NULL, NULL, NULL, NULL, NULL, NULL){}",
            select_tail(LEVELS.iter().map(|l| l.table))
        );
        let plan: Vec<(i64, i64, i64, String)> = on_tx!(&mut tx, |conn, Db| {
            sqlx::query_as::<Db, _>(&select)
                .fetch_all(&mut **conn)
                .await
        })
        .unwrap();
        let steps: Vec<&str> = plan.iter().map(|(.., detail)| detail.as_str()).collect();
        let lookups = steps
            .iter()
            .filter(|s| s.starts_with("SEARCH t USING INDEX"))
            .count();
        assert_eq!(lookups, LEVELS.len(), "{steps:#?}");
        assert!(!steps.iter().any(|s| s.starts_with("SCAN t")), "{steps:#?}");
    }
}
