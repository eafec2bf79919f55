//! The ledger's tables against a reference: random rows over a few days
//! are written in batches, then totals over random ranges and groupings are
//! compared with sums computed from the rows themselves. Every test runs
//! on SQLite and on PostgreSQL (a fresh database each, dropped after).

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::domain::latency::{bucket_middle_us, bucket_of};
use crate::domain::{Usage, UsageRow};
use crate::store::test_db::TestDatabase;
use crate::store::{Store, on_pool};

/// 2026-01-15T00:00:00Z
const T0: i64 = 1_768_435_200_000;

/// `$test(&Store)` as two tests, `$test::sqlite` and `$test::postgres`.
macro_rules! on_both_databases {
    ($test:ident) => {
        mod $test {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}/ledger.db", dir.path().display());
                let store = Store::connect(&url).await.unwrap();
                super::$test(&store).await;
            }

            #[tokio::test]
            async fn postgres() {
                let database = TestDatabase::create().await;
                let store = Store::connect(&database.url).await.unwrap();
                super::$test(&store).await;
                store.close().await;
            }
        }
    };
}

on_both_databases!(totals_match_the_rows_for_any_range_and_grouping);
on_both_databases!(pages_walk_every_matching_row_newest_first_once);
on_both_databases!(pruning_deletes_old_rows_and_their_rollups_and_keeps_the_rest);
on_both_databases!(daily_rollups_missing_from_an_older_ledger_are_filled_from_hourly_ones);
on_both_databases!(rows_an_older_version_wrote_one_per_request_are_packed_and_read_alike);

const KEYS: [&str; 3] = ["key_a", "key_b", "key_c"];
const MODELS: [&str; 3] = ["claude-sonnet-4-5", "claude-haiku-4-5", "gpt-4o"];

fn random_row(rng: &mut StdRng, i: usize, from: i64, span: i64) -> UsageRow {
    let provider = if rng.gen_bool(0.7) {
        ProviderKind::Anthropic
    } else {
        ProviderKind::OpenAI
    };
    let (status, error_class) = match rng.gen_range(0..10) {
        0 => (429, Some("rate_limit_error")),
        1 => (499, Some("client_closed")),
        2 => (200, Some("api_error")), // a stream that failed after it began
        3 => (400, None),              // failed without a class
        _ => (200, None),
    };
    let refused = rng.gen_bool(0.05);
    let output_tokens = rng.gen_range(0..2_000);
    UsageRow {
        at_ms: from + rng.gen_range(0..span),
        request_id: format!("req-{i}"),
        route: "/v1/messages",
        provider: (!refused).then_some(provider),
        model_requested: (!refused).then(|| MODELS[rng.gen_range(0..3)].to_string()),
        // The upstream sometimes names a dated snapshot.
        model_answered: rng
            .gen_bool(0.5)
            .then(|| MODELS[rng.gen_range(0..3)].to_string()),
        key_id: (!refused).then(|| KEYS[rng.gen_range(0..3)].to_string()),
        attempts: rng.gen_range(1..4),
        keys_tried: vec![KEYS[0].to_string()],
        status,
        error_class: error_class.map(str::to_string),
        usage: Usage {
            input_tokens: rng.gen_range(0..5_000),
            output_tokens,
            cache_creation_input_tokens: rng.gen_range(0..300),
            cache_creation_1h_tokens: 0,
            cache_read_input_tokens: rng.gen_range(0..3_000),
            // A part of the output, on about half the rows.
            reasoning_tokens: if rng.gen_bool(0.5) {
                rng.gen_range(0..=output_tokens)
            } else {
                0
            },
        },
        cost_nanos: rng.gen_range(0..50_000_000),
        latency_us: rng.gen_range(200..20_000_000),
        ttft_us: rng.gen_bool(0.5).then(|| rng.gen_range(100..500_000)),
        client_key: None,
        unpriced: false,
        cache_scope: None,
    }
}

/// A dimension's value for one row, as the store must report it.
fn value_of(row: &UsageRow, dimension: Dimension) -> DimValue {
    let name = |n: Option<&str>| DimValue::Name(n.map(str::to_string));
    match dimension {
        // The rows' keys are not stored: each is its own scope.
        Dimension::Key | Dimension::Scope => name(row.key_id.as_deref()),
        Dimension::Model => name(row.model()),
        Dimension::Provider => name(row.provider.map(|p| p.as_str())),
        Dimension::Status => DimValue::Number(i64::from(row.status)),
        Dimension::Hour => DimValue::Number(hour_floor(row.at_ms)),
        Dimension::Day => DimValue::Number(row.at_ms.div_euclid(DAY_MS) * DAY_MS),
    }
}

fn matches(row: &UsageRow, filter: &UsageFilter) -> bool {
    (filter.from_ms..filter.to_ms).contains(&row.at_ms)
        && filter.provider.is_none_or(|p| row.provider == Some(p))
        && filter
            .model
            .as_deref()
            .is_none_or(|m| row.model() == Some(m))
        && filter
            .key
            .as_deref()
            .is_none_or(|k| row.key_id.as_deref() == Some(k))
}

/// Totals computed from the rows, with exact latencies kept aside.
fn reference(
    rows: &[UsageRow],
    filter: &UsageFilter,
    group_by: &[Dimension],
) -> BTreeMap<Vec<DimValue>, (GroupTotals, Vec<u64>)> {
    let mut groups: BTreeMap<Vec<DimValue>, (GroupTotals, Vec<u64>)> = BTreeMap::new();
    for row in rows.iter().filter(|r| matches(r, filter)) {
        let key = group_by.iter().map(|d| value_of(row, *d)).collect();
        let (totals, latencies) = groups.entry(key).or_default();
        totals.add_outcome(
            i64::from(row.status),
            row.error_class.as_deref().unwrap_or(""),
            1,
        );
        totals.tokens.input += row.usage.input_tokens;
        totals.tokens.output += row.usage.output_tokens;
        totals.tokens.cache_read += row.usage.cache_read_input_tokens;
        totals.tokens.cache_write += row.usage.cache_creation_input_tokens;
        totals.tokens.reasoning += row.usage.reasoning_tokens;
        totals.cost_nanos += row.cost_nanos;
        latencies.push(row.latency_us);
    }
    groups
}

/// The exact nearest-rank quantile.
fn exact_quantile(latencies: &mut [u64], quantile: f64) -> u64 {
    latencies.sort_unstable();
    let rank = ((quantile * latencies.len() as f64).ceil() as usize).max(1);
    latencies[rank - 1]
}

/// `n` random rows over `span` from a little after `T0`, written in
/// batches of uneven size that cross hours (and days, if `span` does).
async fn written(rng: &mut StdRng, store: &Store, n: usize, span: i64) -> Vec<UsageRow> {
    let rows: Vec<UsageRow> = (0..n)
        .map(|i| random_row(rng, i, T0 + 7 * 60_000, span))
        .collect();
    let mut start = 0;
    while start < rows.len() {
        let end = (start + rng.gen_range(1..400)).min(rows.len());
        write_batch(store, &rows[start..end]).await.unwrap();
        start = end;
    }
    rows
}

async fn totals_match_the_rows_for_any_range_and_grouping(store: &Store) {
    let mut rng = StdRng::seed_from_u64(11);
    // Three days and a bit, so ranges cross days as well as hours.
    let rows = written(&mut rng, store, 4_000, 3 * DAY_MS).await;
    assert!(rows.iter().any(|r| r.usage.reasoning_tokens > 0));
    let groupings: [&[Dimension]; 7] = [
        &[],
        &[Dimension::Key],
        &[Dimension::Model],
        &[Dimension::Status, Dimension::Provider],
        &[Dimension::Key, Dimension::Hour],
        &[Dimension::Day],
        &[Dimension::Hour, Dimension::Model],
    ];
    for round in 0..60 {
        // Ranges inside one hour, across one boundary, over whole hours or
        // days, aligned and not, and past the data.
        let from = T0 + rng.gen_range(-HOUR_MS..3 * DAY_MS);
        let to = match round % 4 {
            0 => hour_floor(from) + rng.gen_range(1..4) * HOUR_MS,
            1 => day_floor(from) + rng.gen_range(1..4) * DAY_MS,
            2 => from + rng.gen_range(1..HOUR_MS),
            _ => from + rng.gen_range(1..3 * DAY_MS),
        };
        let filter = UsageFilter {
            from_ms: match round % 5 {
                0 => hour_floor(from),
                1 => day_floor(from),
                _ => from,
            },
            to_ms: to,
            provider: (round % 3 == 0).then_some(ProviderKind::Anthropic),
            model: (round % 7 == 0).then(|| MODELS[0].to_string()),
            key: (round % 6 == 0).then(|| KEYS[1].to_string()),
        };
        let group_by = groupings[round % groupings.len()];
        let got = totals(store, &filter, group_by).await.unwrap();
        let mut want = reference(&rows, &filter, group_by);
        let got_keys: Vec<_> = got.iter().map(|(k, _)| k.clone()).collect();
        let want_keys: Vec<_> = want.keys().cloned().collect();
        assert_eq!(got_keys, want_keys, "groups of {filter:?} by {group_by:?}");
        for (key, totals) in got {
            let (expected, latencies) = want.get_mut(&key).unwrap();
            assert_eq!(totals.requests, expected.requests, "{key:?}");
            assert_eq!(totals.successes, expected.successes, "{key:?}");
            assert_eq!(totals.errors, expected.errors, "{key:?}");
            assert_eq!(totals.tokens, expected.tokens, "{key:?}");
            assert_eq!(totals.cost_nanos, expected.cost_nanos, "{key:?}");
            for quantile in [0.5, 0.95] {
                let exact = exact_quantile(latencies, quantile);
                assert_eq!(
                    totals.latency.quantile_us(quantile),
                    Some(bucket_middle_us(bucket_of(exact))),
                    "p{quantile} of {key:?}: the bucket of the exact value"
                );
            }
        }
    }
}

async fn pages_walk_every_matching_row_newest_first_once(store: &Store) {
    let mut rng = StdRng::seed_from_u64(5);
    let mut rows = written(&mut rng, store, 500, 5 * HOUR_MS).await;
    // Rows that arrived in the same millisecond: ordered by when written.
    let same_ms: Vec<UsageRow> = (0..9)
        .map(|i| UsageRow {
            at_ms: T0 + 2 * HOUR_MS,
            request_id: format!("tie-{i}"),
            provider: Some(ProviderKind::Anthropic),
            ..rows[0].clone()
        })
        .collect();
    write_batch(store, &same_ms).await.unwrap();
    rows.extend(same_ms);
    let filter = UsageFilter {
        from_ms: T0 + HOUR_MS + 1,
        to_ms: T0 + 4 * HOUR_MS,
        provider: Some(ProviderKind::Anthropic),
        model: None,
        key: None,
    };
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = page(store, &filter, after, 7).await.unwrap();
        seen.extend(page.iter().map(|e| e.request_id.clone()));
        match page.last() {
            Some(last) if page.len() == 7 => after = Some(last.position()),
            _ => break,
        }
    }
    // Newest first; among equal times, the later written first.
    let mut expected: Vec<(usize, &UsageRow)> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| matches(r, &filter))
        .collect();
    expected.sort_by_key(|(i, r)| std::cmp::Reverse((r.at_ms, *i)));
    let expected: Vec<String> = expected
        .into_iter()
        .map(|(_, r)| r.request_id.clone())
        .collect();
    assert!(expected.len() > 50);
    assert_eq!(seen, expected);
}

async fn pruning_deletes_old_rows_and_their_rollups_and_keeps_the_rest(store: &Store) {
    let mut rng = StdRng::seed_from_u64(3);
    let rows = written(&mut rng, store, 600, 3 * DAY_MS).await;
    let cutoff = T0 + DAY_MS;
    let mut deleted = 0;
    loop {
        // One block per step: the rows straddle the cutoff in blocks
        // that are rewritten without their old rows.
        let step = prune_requests(store, cutoff, 1).await.unwrap();
        deleted += step.rows;
        if !step.more {
            break;
        }
    }
    let old = rows.iter().filter(|r| r.at_ms < cutoff).count() as u64;
    assert_eq!(deleted, old);
    assert!(prune_rollups(store, cutoff).await.unwrap() > 0);
    for table in ["usage_daily", "usage_hourly", "usage_5min"] {
        let sql = format!("SELECT start_ms FROM {table}");
        let starts: Vec<i64> = on_pool!(store, |pool, Db| {
            sqlx::query_scalar(&sql).fetch_all(pool).await
        })
        .unwrap();
        assert!(!starts.is_empty());
        assert!(starts.iter().all(|s| *s >= cutoff), "{table}: {starts:?}");
    }
    let everything = UsageFilter {
        from_ms: T0 - DAY_MS,
        to_ms: T0 + 4 * DAY_MS,
        provider: None,
        model: None,
        key: None,
    };
    let left = totals(store, &everything, &[]).await.unwrap();
    assert_eq!(left[0].1.requests, rows.len() as u64 - old);
    // A range over the pruned day finds nothing, from any table.
    let pruned = UsageFilter {
        to_ms: cutoff,
        ..everything
    };
    assert!(totals(store, &pruned, &[]).await.unwrap().is_empty());
}

async fn daily_rollups_missing_from_an_older_ledger_are_filled_from_hourly_ones(store: &Store) {
    let mut rng = StdRng::seed_from_u64(8);
    let rows = written(&mut rng, store, 800, 3 * DAY_MS).await;
    let month = UsageFilter {
        from_ms: T0 - DAY_MS,
        to_ms: T0 + 5 * DAY_MS,
        provider: None,
        model: None,
        key: None,
    };
    let by = [Dimension::Key, Dimension::Day];
    let before = totals(store, &month, &by).await.unwrap();
    assert_eq!(
        before.iter().map(|(_, t)| t.requests).sum::<u64>(),
        rows.len() as u64
    );
    // A ledger written before migration 0004: hourly rollups, no daily ones.
    on_pool!(store, |pool, Db| {
        sqlx::query("DELETE FROM usage_daily")
            .execute(pool)
            .await
            .map(|_| ())
    })
    .unwrap();
    let emptied = totals(store, &month, &by).await.unwrap();
    assert_ne!(emptied, before, "whole days are read from usage_daily");

    let filled = backfill_rollups(store).await.unwrap();
    assert!(filled > 0);
    assert_eq!(totals(store, &month, &by).await.unwrap(), before);
    // Once filled, it is not filled again.
    assert_eq!(backfill_rollups(store).await.unwrap(), 0);
    assert_eq!(totals(store, &month, &by).await.unwrap(), before);
}

/// Stores `rows` as keygate did before blocks: one `usage_requests` row each.
async fn written_one_per_request(store: &Store, rows: &[UsageRow]) {
    const INSERT: &str = "INSERT INTO usage_requests (at_ms, request_id, route, provider, \
         model_requested, model_answered, key_id, attempts, keys_tried, status, error_class, \
         input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, \
         cost_nanos, latency_us, latency_bucket, ttft_us, client_key, cache_scope, unpriced) ";
    for chunk in rows.chunks(100) {
        on_pool!(store, |pool, Db| {
            let mut insert = sqlx::QueryBuilder::<Db>::new(INSERT);
            insert.push_values(chunk, |mut values, row| {
                values
                    .push_bind(row.at_ms)
                    .push_bind(row.request_id.as_str())
                    .push_bind(row.route)
                    .push_bind(row.provider.map(|p| p.as_str()))
                    .push_bind(row.model_requested.as_deref())
                    .push_bind(row.model_answered.as_deref())
                    .push_bind(row.key_id.as_deref())
                    .push_bind(i64::from(row.attempts))
                    .push_bind(serde_json::to_string(&row.keys_tried).unwrap())
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
            insert.build().execute(pool).await.map(|_| ())
        })
        .unwrap();
    }
}

async fn rows_an_older_version_wrote_one_per_request_are_packed_and_read_alike(store: &Store) {
    let mut rng = StdRng::seed_from_u64(21);
    // The packed reference: the same rows written by this version.
    let rows: Vec<UsageRow> = (0..5_000)
        .map(|i| random_row(&mut rng, i, T0 + 7 * 60_000, 2 * DAY_MS))
        .collect();
    write_batch(store, &rows[..10]).await.unwrap();
    let everything = UsageFilter {
        from_ms: T0,
        to_ms: T0 + 3 * DAY_MS,
        provider: None,
        model: None,
        key: None,
    };
    let newer = page(store, &everything, None, 100).await.unwrap();
    written_one_per_request(store, &rows[10..]).await;

    // More than a block's worth, moved a block per transaction.
    assert_eq!(pack_legacy_rows(store).await.unwrap(), 4_990);
    assert_eq!(pack_legacy_rows(store).await.unwrap(), 0);
    let left: i64 = on_pool!(store, |pool, Db| {
        sqlx::query_scalar("SELECT COUNT(*) FROM usage_requests")
            .fetch_one(pool)
            .await
    })
    .unwrap();
    assert_eq!(left, 0);
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = page(store, &everything, after, 999).await.unwrap();
        after = page.last().map(LedgerEntry::position);
        seen.extend(page);
        if after.is_none() {
            break;
        }
    }
    assert_eq!(seen.len(), rows.len());
    let by_request: BTreeMap<&str, &LedgerEntry> =
        seen.iter().map(|e| (e.request_id.as_str(), e)).collect();
    for row in &rows {
        let entry = by_request[row.request_id.as_str()];
        let id = entry.id;
        assert_eq!(*entry, block::RowFields::of(row).to_entry(id));
    }
    // The rows written since kept their ids.
    for entry in newer {
        assert_eq!(by_request[entry.request_id.as_str()].id, entry.id);
    }
}

/// Two keygate processes writing to one PostgreSQL database at once, into
/// the same rollup rows: every request, token and histogram sample is
/// kept at every level (the histograms are read, merged and written back,
/// which the ledger's advisory lock serialises).
#[tokio::test]
async fn concurrent_writers_on_one_postgres_database_lose_no_counts() {
    let database = TestDatabase::create().await;
    let first = Store::connect(&database.url).await.unwrap();
    let second = Store::connect(&database.url).await.unwrap();
    let mut rng = StdRng::seed_from_u64(21);
    // All in one five-minute slice: every batch touches the same rows.
    let rows: Vec<UsageRow> = (0..2_000)
        .map(|i| random_row(&mut rng, i, T0, 60_000))
        .collect();
    let write = |store: Store, rows: Vec<UsageRow>| {
        tokio::spawn(async move {
            for chunk in rows.chunks(40) {
                write_batch(&store, chunk).await.unwrap();
            }
        })
    };
    let (a, b) = tokio::join!(
        write(first.clone(), rows[..1_000].to_vec()),
        write(second.clone(), rows[1_000..].to_vec())
    );
    a.unwrap();
    b.unwrap();
    // A day, an hour and a slice: read from each rollup level.
    for span in [DAY_MS, HOUR_MS, 5 * 60_000] {
        let filter = UsageFilter {
            from_ms: T0,
            to_ms: T0 + span,
            provider: None,
            model: None,
            key: None,
        };
        let want = reference(&rows, &filter, &[Dimension::Key]);
        let got = totals(&first, &filter, &[Dimension::Key]).await.unwrap();
        assert_eq!(got.len(), want.len());
        for (key, totals) in got {
            let (expected, _) = &want[&key];
            assert_eq!(totals.requests, expected.requests, "{key:?}");
            assert_eq!(totals.tokens, expected.tokens, "{key:?}");
            assert_eq!(
                totals.latency.count(),
                expected.requests,
                "histogram samples of {key:?} over {span} ms"
            );
        }
    }
    first.close().await;
    second.close().await;
}

/// `store copy` from SQLite to PostgreSQL carries every token kind,
/// reasoning included, in the raw rows and at every rollup level: totals
/// over a range read from all four tables, and the rows themselves, are
/// the same on both sides.
#[tokio::test]
async fn a_copied_ledger_has_the_source_totals_and_rows() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/source.db", dir.path().display());
    let source = Store::connect(&url).await.unwrap();
    let mut rng = StdRng::seed_from_u64(13);
    let rows = written(&mut rng, &source, 600, 2 * DAY_MS).await;
    assert!(rows.iter().any(|r| r.usage.reasoning_tokens > 0));
    let database = TestDatabase::create().await;
    let target = Store::connect(&database.url).await.unwrap();
    crate::store::copy::copy_all(&source, &target)
        .await
        .unwrap();

    // Partial slices, five-minute slices, hours and a whole day.
    let filter = UsageFilter {
        from_ms: T0 + 7 * 60_000 + 13_000,
        to_ms: T0 + 2 * DAY_MS + 3 * HOUR_MS + 17 * 60_000 + 5_000,
        provider: None,
        model: None,
        key: None,
    };
    for group_by in [&[][..], &[Dimension::Model], &[Dimension::Hour]] {
        let copied = totals(&target, &filter, group_by).await.unwrap();
        assert_eq!(copied, totals(&source, &filter, group_by).await.unwrap());
        let want = reference(&rows, &filter, group_by);
        for (key, got) in copied {
            assert_eq!(got.tokens, want[&key].0.tokens, "{key:?}");
        }
    }
    let source_rows = page(&source, &filter, None, 1_000).await.unwrap();
    assert_eq!(
        page(&target, &filter, None, 1_000).await.unwrap(),
        source_rows
    );
    target.close().await;
}
