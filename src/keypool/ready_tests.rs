//! The ready index against the simple scan: for any sequence of picks,
//! outcomes, rate-limit reports, admin changes, cache-scope moves, leases
//! of one bound key, cluster probe tokens and clock steps, a pick through the index takes exactly
//! the key the scan of every key would (for `random`: one of the keys the
//! scan would draw from), and both agree when none can serve. A pick that
//! prefers a cache scope takes what the scan of that scope's keys would,
//! else what the scan of every key would.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use secrecy::SecretString;
use tokio::time::Instant;

use super::Strategy as KeyStrategy;
use super::leasing::Choice;
use super::select::{eligible, pick};
use super::{CooldownPolicy, OutlierPolicy, PoolSettings, PoolState, Selection};
use crate::domain::{FailureNote, KeyEntry, KeyId, Outcome, ProviderKind, RateLimits, Window};

const MODELS: [Option<&str>; 3] = [None, Some("model-a"), Some("model-b")];

/// The scopes keys move to (`None`: a key's own).
const SCOPES: [Option<&str>; 3] = [None, Some("s0"), Some("s1")];

/// The scopes a pick may prefer: none, a shared one, or one key's own.
const PREFERRED: [Option<&str>; 4] = [None, Some("s0"), Some("s1"), Some("key0")];

#[derive(Debug, Clone)]
enum Step {
    Pick {
        model: usize,
        tried: u8,
        spent: u8,
        scope: usize,
    },
    Record {
        key: usize,
        model: usize,
        outcome: u8,
        secs: u64,
    },
    Observe {
        key: usize,
        remaining: u64,
        reset_secs: u64,
    },
    Rest {
        key: usize,
        secs: u64,
    },
    Update {
        key: usize,
        weight: u32,
        enabled: bool,
    },
    Invalid {
        key: usize,
        invalid: bool,
    },
    Scope {
        key: usize,
        scope: usize,
    },
    /// A call on a resource only this key can see (`select_bound`).
    Bound {
        key: usize,
        model: usize,
    },
    Wait {
        millis: u64,
    },
    Share,
    GrantProbes,
    Reset,
    /// Takes a key out of the pool, or puts it back (fresh).
    Toggle {
        key: usize,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0..3usize, any::<u8>(), any::<u8>(), 0..PREFERRED.len())
            .prop_map(|(model, tried, spent, scope)| Step::Pick { model, tried: tried & 0b111, spent: spent & spent >> 3 & 0b111, scope }),
        4 => (0..8usize, 0..3usize, 0..8u8, 0..200u64)
            .prop_map(|(key, model, outcome, secs)| Step::Record { key, model, outcome, secs }),
        1 => (0..8usize, 0..3u64, 0..90u64)
            .prop_map(|(key, remaining, reset_secs)| Step::Observe { key, remaining, reset_secs }),
        1 => (0..8usize, 1..120u64).prop_map(|(key, secs)| Step::Rest { key, secs }),
        1 => (0..8usize, 1..5u32, any::<bool>())
            .prop_map(|(key, weight, enabled)| Step::Update { key, weight, enabled: enabled || weight > 1 }),
        1 => (0..8usize, any::<bool>()).prop_map(|(key, invalid)| Step::Invalid { key, invalid }),
        1 => (0..8usize, 0..SCOPES.len()).prop_map(|(key, scope)| Step::Scope { key, scope }),
        1 => (0..8usize, 0..3usize).prop_map(|(key, model)| Step::Bound { key, model }),
        3 => prop_oneof![0..2000u64, 0..120_000u64].prop_map(|millis| Step::Wait { millis }),
        1 => Just(Step::Share),
        1 => Just(Step::GrantProbes),
        1 => Just(Step::Reset),
        1 => (0..8usize).prop_map(|key| Step::Toggle { key }),
    ]
}

fn strategy() -> impl Strategy<Value = KeyStrategy> {
    prop_oneof![
        Just(KeyStrategy::RoundRobin),
        Just(KeyStrategy::Random),
        Just(KeyStrategy::Weighted),
        Just(KeyStrategy::LeastUsed),
        Just(KeyStrategy::Headroom),
    ]
}

fn pool(strategy: KeyStrategy, keys: usize) -> PoolState {
    let settings = PoolSettings {
        provider: ProviderKind::Anthropic,
        strategy,
        cooldown: CooldownPolicy {
            no_access: Duration::from_secs(300),
            default: Duration::from_secs(20),
            max: Duration::from_secs(300),
        },
        max_attempts: 3,
        per_model_cooldowns: true,
        outlier: OutlierPolicy {
            consecutive_faults: 2,
            base: Duration::from_secs(10),
            max: Duration::from_secs(300),
        },
    };
    PoolState::new(settings, (0..keys).map(entry).collect())
}

fn entry(i: usize) -> KeyEntry {
    KeyEntry {
        id: KeyId::new(format!("key{i}")),
        masked: format!("sk-…{i}"),
        name: None,
        weight: 1,
        enabled: true,
        scope: None,
        secret: Arc::new(SecretString::from(format!("secret-{i}"))),
    }
}

fn outcome(kind: u8, secs: u64) -> Outcome {
    let note = |status| FailureNote {
        status: Some(status),
        error_type: "x".into(),
        message: "m".into(),
    };
    match kind {
        0 | 1 => Outcome::Success { latency: None },
        2 => Outcome::RateLimited {
            cooldown: secs.is_multiple_of(2).then(|| Duration::from_secs(secs)),
            note: note(429),
        },
        3 => Outcome::QuotaSpent {
            rest: Duration::from_secs(secs.max(1)),
            note: note(429),
        },
        4 => Outcome::NoAccess(note(403)),
        5 => Outcome::Failed(note(529)),
        6 => Outcome::RequestFault,
        _ => Outcome::Cancelled,
    }
}

/// The keys of the mask's bits, among the pool's first three.
fn keys_of(mask: u8, keys: usize) -> Vec<KeyId> {
    (0..3.min(keys))
        .filter(|i| mask & (1 << i) != 0)
        .map(|i| KeyId::new(format!("key{i}")))
        .collect()
}

fn index_of(pool: &PoolState, key: &KeyId) -> usize {
    pool.slots
        .iter()
        .position(|s| &s.entry.id == key)
        .unwrap_or(usize::MAX)
}

/// The keys of cache `scope` a preferring pick may take, in round-robin
/// order from the cursor: found from each slot's entry, not through the
/// scope index.
fn scope_candidates(
    pool: &PoolState,
    scope: &str,
    (now, wall): (Instant, SystemTime),
    tried: &[usize],
    spent: &[usize],
    model: Option<&str>,
) -> Vec<usize> {
    let count = pool.slots.len();
    let strategy = pool.settings.strategy;
    (0..count)
        .map(|offset| (pool.cursor + offset) % count)
        .filter(|&i| {
            let slot = &pool.slots[i];
            *slot.entry.cache_scope() == *scope
                && !tried.contains(&i)
                && !spent.contains(&i)
                && eligible(strategy, slot, model, now, wall)
        })
        .collect()
}

/// Picks through the index (preferring `scope`, if any) and checks it
/// against the scan.
fn pick_and_compare(
    pool: &mut PoolState,
    model: Option<&str>,
    tried: &[KeyId],
    spent: &[KeyId],
    scope: Option<&str>,
    clock: (Instant, SystemTime),
) -> Result<(), TestCaseError> {
    let (now, wall) = clock;
    let to_indexes = |pool: &PoolState, keys: &[KeyId]| -> Vec<usize> {
        keys.iter().map(|k| index_of(pool, k)).collect()
    };
    let tried_at = to_indexes(pool, tried);
    let spent_at = to_indexes(pool, spent);
    let strategy = pool.settings.strategy;
    let random = strategy == KeyStrategy::Random;
    let in_scope = scope
        .map(|scope| scope_candidates(pool, scope, clock, &tried_at, &spent_at, model))
        .filter(|candidates| !candidates.is_empty());
    let (expected, candidates) = match in_scope {
        Some(candidates) => (
            Choice::Take(pick(strategy, &candidates, &pool.slots, now, wall)),
            Ok(candidates),
        ),
        None => (
            pool.scan(now, wall, &tried_at, &spent_at, model),
            pool.scan_candidates(now, wall, &tried_at, &spent_at, model),
        ),
    };
    let got = match pool.select_preferring(now, wall, tried, spent, model, scope) {
        Selection::Leased(lease) => {
            let index = index_of(pool, &lease.id);
            prop_assert_eq!(&lease.scope, &pool.slots[index].entry.cache_scope());
            Choice::Take(index)
        }
        Selection::Spent => Choice::Spent,
        _ => Choice::NoneReady,
    };
    match (&got, random) {
        (Choice::Take(index), true) => {
            let Ok(candidates) = candidates else {
                return Err(TestCaseError::fail(format!("leased {index}, scan: none")));
            };
            prop_assert!(candidates.contains(index), "{index} not in {candidates:?}");
        }
        _ => prop_assert_eq!(got, expected),
    }
    Ok(())
}

fn run(strategy: KeyStrategy, keys: usize, steps: Vec<Step>) -> Result<(), TestCaseError> {
    let mut pool = pool(strategy, keys);
    let start = Instant::now();
    let start_wall = SystemTime::now();
    let mut elapsed = Duration::ZERO;
    for step in steps {
        let clock = (start + elapsed, start_wall + elapsed);
        let (now, wall) = clock;
        let key = |i: usize| KeyId::new(format!("key{}", i % keys));
        match step {
            Step::Pick {
                model,
                tried,
                spent,
                scope,
            } => pick_and_compare(
                &mut pool,
                MODELS[model],
                &keys_of(tried, keys),
                &keys_of(spent, keys),
                PREFERRED[scope],
                clock,
            )?,
            Step::Record {
                key: k,
                model,
                outcome: kind,
                secs,
            } => pool.record(&key(k), MODELS[model], &outcome(kind, secs), now, wall),
            Step::Observe {
                key: k,
                remaining,
                reset_secs,
            } => {
                let window = Window {
                    limit: 2,
                    remaining,
                    reset: Some(wall + Duration::from_secs(reset_secs)),
                };
                let limits = RateLimits {
                    requests: Some(window),
                    ..RateLimits::default()
                };
                pool.observe(&key(k), limits);
            }
            Step::Rest { key: k, secs } => pool.rest(&key(k), Duration::from_secs(secs), now, wall),
            Step::Update {
                key: k,
                weight,
                enabled,
            } => pool.update_key(&key(k), None, Some(weight), Some(enabled)),
            Step::Invalid { key: k, invalid } => {
                pool.set_invalid(&key(k), invalid.then(|| "rejected".to_string()))
            }
            Step::Scope { key: k, scope } => pool.set_scope(&key(k), SCOPES[scope].map(Arc::from)),
            Step::Bound { key: k, model } => {
                if let Selection::Leased(lease) =
                    pool.select_bound(now, wall, &key(k), MODELS[model])
                {
                    prop_assert_eq!(lease.id, key(k));
                }
            }
            Step::Wait { millis } => elapsed += Duration::from_millis(millis),
            Step::Share => pool.share(now, wall),
            Step::GrantProbes => {
                for probe in pool.probes_due(now) {
                    pool.probe_granted(&probe);
                }
            }
            Step::Reset => pool.reset(),
            Step::Toggle { key: k } => {
                if !pool.remove_key(&key(k)) {
                    pool.add_key(entry(k % keys));
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn the_index_picks_exactly_as_the_scan_does(
        strategy in strategy(),
        keys in 1..8usize,
        steps in proptest::collection::vec(step(), 1..120),
    ) {
        run(strategy, keys, steps)?;
    }
}

#[test]
fn a_pick_in_a_large_pool_visits_no_other_key() {
    // Cooling nearly every key of a large pool leaves the index with the
    // few ready ones: picks land on them without waiting on the rest.
    let clock = (Instant::now(), SystemTime::now());
    let mut pool = pool(KeyStrategy::RoundRobin, 5000);
    for i in 0..4990 {
        pool.record(
            &KeyId::new(format!("key{i}")),
            MODELS[1],
            &outcome(2, 60),
            clock.0,
            clock.1,
        );
    }
    let picks: Vec<String> = (0..20)
        .filter_map(|_| match pool.select(clock.0, clock.1, &[], MODELS[1]) {
            Selection::Leased(lease) => Some(lease.id.to_string()),
            _ => None,
        })
        .collect();
    let expected: Vec<String> = (4990..5000)
        .chain(4990..5000)
        .map(|i| format!("key{i}"))
        .collect();
    assert_eq!(picks, expected);
    // The other model is not cooled: every key serves it.
    let other = pool.select(clock.0, clock.1, &[], MODELS[2]);
    assert!(matches!(other, Selection::Leased(lease) if lease.id.as_str() == "key0"));
}
