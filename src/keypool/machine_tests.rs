//! Transitions of the pool's state machine, with time passed in: cooldowns,
//! the ladder and half-open probes are checked at exact instants, no sleeps.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use secrecy::SecretString;
use tokio::time::Instant;

use super::*;
use crate::domain::{FailureNote, RateLimits, Window};
use crate::keypool::{CooldownPolicy, Selection};

pub(in crate::keypool) const MODEL: Option<&str> = Some("claude-sonnet-4-20250514");
const OTHER_MODEL: Option<&str> = Some("claude-haiku-4-5");

fn entry(i: usize, weight: u32) -> KeyEntry {
    KeyEntry {
        id: KeyId::new(format!("key{i}")),
        masked: format!("sk-…{i}"),
        name: None,
        weight,
        enabled: true,
        scope: None,
        secret: Arc::new(SecretString::from(format!("secret-{i}"))),
    }
}

fn pool_with(n: usize, strategy: Strategy) -> PoolState {
    let settings = PoolSettings {
        provider: crate::domain::ProviderKind::Anthropic,
        strategy,
        cooldown: CooldownPolicy {
            no_access: Duration::from_secs(3600),
            default: Duration::from_secs(60),
            max: Duration::from_secs(900),
        },
        max_attempts: 3,
        per_model_cooldowns: true,
        outlier: crate::keypool::OutlierPolicy {
            consecutive_faults: 5,
            base: Duration::from_secs(30),
            max: Duration::from_secs(900),
        },
    };
    PoolState::new(settings, (0..n).map(|i| entry(i, 1)).collect())
}

pub(in crate::keypool) fn pool(n: usize) -> PoolState {
    pool_with(n, Strategy::RoundRobin)
}

pub(in crate::keypool) struct Clock {
    start: Instant,
    wall: SystemTime,
}

impl Clock {
    pub(in crate::keypool) fn new() -> Self {
        Self {
            start: Instant::now(),
            wall: SystemTime::now(),
        }
    }
    pub(in crate::keypool) fn at(&self, secs: u64) -> (Instant, SystemTime) {
        let d = Duration::from_secs(secs);
        (self.start + d, self.wall + d)
    }
}

fn lease_at(
    pool: &mut PoolState,
    (now, wall): (Instant, SystemTime),
    tried: &[KeyId],
    model: Option<&str>,
) -> Option<KeyId> {
    match pool.select(now, wall, tried, model) {
        Selection::Leased(lease) => Some(lease.id),
        _ => None,
    }
}

fn note(status: u16) -> FailureNote {
    FailureNote {
        status: Some(status),
        error_type: "x".into(),
        message: "m".into(),
    }
}

pub(in crate::keypool) fn limited(hint: Option<u64>) -> Outcome {
    Outcome::RateLimited {
        cooldown: hint.map(Duration::from_secs),
        note: note(429),
    }
}

fn ok() -> Outcome {
    Outcome::Success {
        latency: Some(Duration::from_millis(20)),
    }
}

pub(in crate::keypool) fn record(
    pool: &mut PoolState,
    key: &KeyId,
    model: Option<&str>,
    outcome: Outcome,
    (now, wall): (Instant, SystemTime),
) {
    pool.record(key, model, &outcome, now, wall);
}

fn cooldown_secs(pool: &PoolState, clock: (Instant, SystemTime)) -> u64 {
    pool.status(clock.0, clock.1).keys[0].cooldown_remaining_secs
}

#[test]
fn round_robin_spreads_over_all_keys() {
    let clock = Clock::new();
    let mut pool = pool(3);
    let ids: Vec<String> = (0..6)
        .map(|_| {
            lease_at(&mut pool, clock.at(0), &[], MODEL)
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids, ["key0", "key1", "key2", "key0", "key1", "key2"]);
}

#[test]
fn untried_keys_come_first_then_tried_ones_are_reused() {
    let clock = Clock::new();
    let mut pool = pool(2);
    let first = lease_at(&mut pool, clock.at(0), &[], MODEL).unwrap();
    let second = lease_at(&mut pool, clock.at(0), std::slice::from_ref(&first), MODEL).unwrap();
    assert_ne!(first, second);
    assert!(lease_at(&mut pool, clock.at(0), &[first, second], MODEL).is_some());
}

#[test]
fn a_429_benches_the_key_for_its_model_only() {
    let clock = Clock::new();
    let mut pool = pool(1);
    let key = lease_at(&mut pool, clock.at(0), &[], MODEL).unwrap();
    record(&mut pool, &key, MODEL, limited(Some(30)), clock.at(0));
    assert!(lease_at(&mut pool, clock.at(10), &[], MODEL).is_none());
    assert_eq!(
        lease_at(&mut pool, clock.at(10), &[], OTHER_MODEL),
        Some(key.clone())
    );
    match pool.select(clock.at(10).0, clock.at(10).1, &[], MODEL) {
        Selection::AllCoolingDown { retry_after } => {
            assert_eq!(retry_after, Duration::from_secs(20))
        }
        _ => panic!("expected all cooling down"),
    }
}

#[test]
fn key_wide_cooldowns_when_the_provider_does_not_limit_per_model() {
    let clock = Clock::new();
    let mut pool = pool(1);
    pool.settings.per_model_cooldowns = false;
    let key = lease_at(&mut pool, clock.at(0), &[], MODEL).unwrap();
    record(&mut pool, &key, MODEL, limited(Some(30)), clock.at(0));
    assert!(lease_at(&mut pool, clock.at(10), &[], OTHER_MODEL).is_none());
}

#[test]
fn a_later_429_extends_but_never_shortens() {
    let clock = Clock::new();
    let mut pool = pool(1);
    let key = lease_at(&mut pool, clock.at(0), &[], MODEL).unwrap();
    record(&mut pool, &key, MODEL, limited(Some(100)), clock.at(0));
    record(&mut pool, &key, MODEL, limited(Some(5)), clock.at(0));
    assert_eq!(cooldown_secs(&pool, clock.at(0)), 100);
    record(&mut pool, &key, MODEL, limited(Some(200)), clock.at(0));
    assert_eq!(cooldown_secs(&pool, clock.at(0)), 200);
}

#[test]
fn the_ladder_climbs_on_failed_probes_and_a_success_resets_it() {
    let clock = Clock::new();
    let mut pool = pool(1);
    let key = lease_at(&mut pool, clock.at(0), &[], MODEL).unwrap();
    record(&mut pool, &key, MODEL, limited(None), clock.at(0));
    assert_eq!(cooldown_secs(&pool, clock.at(0)), 60);

    // Half-open at 60 s: one probe goes out, a second request must wait.
    assert_eq!(
        lease_at(&mut pool, clock.at(60), &[], MODEL),
        Some(key.clone())
    );
    assert!(
        lease_at(&mut pool, clock.at(60), &[], MODEL).is_none(),
        "only one probe"
    );
    // The probe is limited again: second rung, 2 minutes.
    record(&mut pool, &key, MODEL, limited(None), clock.at(60));
    assert_eq!(cooldown_secs(&pool, clock.at(60)), 120);
    assert_eq!(
        pool.status(clock.at(60).0, clock.at(60).1).keys[0].cooldown_level,
        1
    );

    assert!(lease_at(&mut pool, clock.at(180), &[], MODEL).is_some());
    record(&mut pool, &key, MODEL, limited(None), clock.at(180));
    assert_eq!(
        cooldown_secs(&pool, clock.at(180)),
        300,
        "third rung: 5 minutes"
    );

    // This probe succeeds: active again, and the ladder starts over.
    assert!(lease_at(&mut pool, clock.at(480), &[], MODEL).is_some());
    record(&mut pool, &key, MODEL, ok(), clock.at(480));
    let status = pool.status(clock.at(480).0, clock.at(480).1);
    assert_eq!(
        (status.keys[0].state, status.keys[0].cooldown_level),
        ("active", 0)
    );
    assert!(status.keys[0].cooldowns.is_empty());
    assert!(
        lease_at(&mut pool, clock.at(480), &[], MODEL).is_some(),
        "no probe limit any more"
    );
    record(&mut pool, &key, MODEL, limited(None), clock.at(480));
    assert_eq!(cooldown_secs(&pool, clock.at(480)), 60);
}

#[test]
fn an_abandoned_probe_lets_another_request_probe() {
    let clock = Clock::new();
    let mut pool = pool(1);
    let key = lease_at(&mut pool, clock.at(0), &[], MODEL).unwrap();
    record(&mut pool, &key, MODEL, limited(Some(10)), clock.at(0));
    assert!(lease_at(&mut pool, clock.at(10), &[], MODEL).is_some());
    assert!(lease_at(&mut pool, clock.at(10), &[], MODEL).is_none());
    record(&mut pool, &key, MODEL, Outcome::Cancelled, clock.at(11));
    assert!(lease_at(&mut pool, clock.at(11), &[], MODEL).is_some());
}

#[test]
fn the_ladder_is_capped_at_the_max() {
    let clock = Clock::new();
    let mut pool = pool(1);
    let key = lease_at(&mut pool, clock.at(0), &[], MODEL).unwrap();
    let mut t = 0;
    record(&mut pool, &key, MODEL, limited(None), clock.at(t));
    for _ in 0..6 {
        t += cooldown_secs(&pool, clock.at(t));
        assert!(lease_at(&mut pool, clock.at(t), &[], MODEL).is_some());
        record(&mut pool, &key, MODEL, limited(None), clock.at(t));
    }
    assert_eq!(cooldown_secs(&pool, clock.at(t)), 900);
}

#[test]
fn rejected_keys_leave_rotation_until_reset_which_keeps_totals() {
    let clock = Clock::new();
    let mut pool = pool(1);
    let key = lease_at(&mut pool, clock.at(0), &[], MODEL).unwrap();
    record(
        &mut pool,
        &key,
        MODEL,
        Outcome::Rejected(note(401)),
        clock.at(0),
    );
    assert!(matches!(
        pool.select(clock.at(0).0, clock.at(0).1, &[], MODEL),
        Selection::NoUsableKey {
            total: 1,
            invalid: 1
        }
    ));
    pool.reset();
    assert!(lease_at(&mut pool, clock.at(0), &[], MODEL).is_some());
    let status = pool.status(clock.at(0).0, clock.at(0).1);
    assert_eq!((status.keys[0].failures, status.keys[0].requests), (0, 2));
}

#[test]
fn disabled_keys_are_never_picked() {
    let clock = Clock::new();
    let mut pool = pool(2);
    pool.update_key(&KeyId::new("key0"), None, None, Some(false));
    for _ in 0..4 {
        assert_eq!(
            lease_at(&mut pool, clock.at(0), &[], MODEL)
                .unwrap()
                .as_str(),
            "key1"
        );
    }
    let status = pool.status(clock.at(0).0, clock.at(0).1);
    assert_eq!(status.keys[0].state, "disabled");
    assert_eq!(status.stats.disabled_keys, 1);
    pool.update_key(&KeyId::new("key0"), None, None, Some(true));
    let picked: Vec<String> = (0..2)
        .map(|_| {
            lease_at(&mut pool, clock.at(0), &[], MODEL)
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(picked.contains(&"key0".to_string()));
}

#[test]
fn weighted_follows_the_weights_exactly() {
    let clock = Clock::new();
    let mut pool = pool_with(2, Strategy::Weighted);
    pool.update_key(&KeyId::new("key0"), None, Some(3), None);
    let picks: Vec<String> = (0..8)
        .map(|_| {
            lease_at(&mut pool, clock.at(0), &[], MODEL)
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(picks.iter().filter(|k| *k == "key0").count(), 6);
    assert_eq!(picks.iter().filter(|k| *k == "key1").count(), 2);
}

#[test]
fn least_used_prefers_keys_with_fewer_requests_in_flight() {
    let clock = Clock::new();
    let mut pool = pool_with(3, Strategy::LeastUsed);
    let a = lease_at(&mut pool, clock.at(0), &[], MODEL).unwrap();
    let b = lease_at(&mut pool, clock.at(0), &[], MODEL).unwrap();
    let c = lease_at(&mut pool, clock.at(0), &[], MODEL).unwrap();
    assert_eq!(
        [a.as_str(), b.as_str(), c.as_str()]
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len(),
        3
    );
    record(&mut pool, &b, MODEL, ok(), clock.at(1));
    assert_eq!(
        lease_at(&mut pool, clock.at(1), &[], MODEL),
        Some(b),
        "the only key not busy"
    );
}

#[test]
fn headroom_prefers_room_and_skips_keys_with_none_until_reset() {
    let clock = Clock::new();
    let mut pool = pool_with(3, Strategy::Headroom);
    let (_, wall) = clock.at(0);
    let window = |remaining, reset_in: u64| {
        Some(Window {
            limit: 100,
            remaining,
            reset: Some(wall + Duration::from_secs(reset_in)),
        })
    };
    pool.observe(
        &KeyId::new("key0"),
        RateLimits {
            requests: window(0, 30),
            ..RateLimits::default()
        },
    );
    pool.observe(
        &KeyId::new("key1"),
        RateLimits {
            requests: window(20, 30),
            ..RateLimits::default()
        },
    );
    pool.observe(
        &KeyId::new("key2"),
        RateLimits {
            requests: window(90, 30),
            ..RateLimits::default()
        },
    );
    for _ in 0..5 {
        assert_eq!(
            lease_at(&mut pool, clock.at(0), &[], MODEL)
                .unwrap()
                .as_str(),
            "key2"
        );
    }
    pool.update_key(&KeyId::new("key2"), None, None, Some(false));
    assert_eq!(
        lease_at(&mut pool, clock.at(0), &[], MODEL)
            .unwrap()
            .as_str(),
        "key1"
    );
    pool.update_key(&KeyId::new("key1"), None, None, Some(false));
    match pool.select(clock.at(0).0, clock.at(0).1, &[], MODEL) {
        Selection::AllCoolingDown { retry_after } => {
            assert_eq!(retry_after, Duration::from_secs(30))
        }
        _ => panic!("key0 has no room until its window resets"),
    }
    assert_eq!(
        lease_at(&mut pool, clock.at(31), &[], MODEL)
            .unwrap()
            .as_str(),
        "key0"
    );
}

#[test]
fn random_only_picks_keys_that_can_serve() {
    let clock = Clock::new();
    let mut pool = pool_with(3, Strategy::Random);
    pool.update_key(&KeyId::new("key1"), None, None, Some(false));
    for _ in 0..50 {
        assert_ne!(
            lease_at(&mut pool, clock.at(0), &[], MODEL)
                .unwrap()
                .as_str(),
            "key1"
        );
    }
}

#[test]
fn most_keys_failing_with_5xx_means_the_provider_is_overloaded() {
    let clock = Clock::new();
    let mut pool = pool(3);
    record(
        &mut pool,
        &KeyId::new("key0"),
        MODEL,
        Outcome::Failed(note(529)),
        clock.at(0),
    );
    assert_eq!(pool.overloaded(clock.at(0).0), None);
    record(
        &mut pool,
        &KeyId::new("key1"),
        MODEL,
        Outcome::Failed(note(500)),
        clock.at(1),
    );
    assert_eq!(pool.overloaded(clock.at(1).0), Some((2, 3)));
    assert_eq!(
        pool.overloaded(clock.at(40).0),
        None,
        "only recent faults count"
    );
    assert_eq!(
        pool.stats(clock.at(1).0).available_keys,
        3,
        "nobody is benched"
    );
}

#[test]
fn saved_state_comes_back_with_deadlines_in_wall_time() {
    let clock = Clock::new();
    let mut pool = pool(2);
    let key = lease_at(&mut pool, clock.at(0), &[], MODEL).unwrap();
    record(&mut pool, &key, MODEL, limited(Some(300)), clock.at(0));
    record(
        &mut pool,
        &KeyId::new("key1"),
        MODEL,
        Outcome::Rejected(note(401)),
        clock.at(0),
    );
    pool.request_started();
    pool.request_finished(false, 1);
    let (now, wall) = clock.at(0);
    let (provider, keys) = pool.take_changes(now, wall);
    assert!(provider.is_some());
    assert_eq!(keys.len(), 2);
    let (_, nothing_new) = pool.take_changes(now, wall);
    assert!(nothing_new.is_empty(), "changes are taken once");

    // A new process, 100 s later.
    let later = Clock::new();
    let (now, _) = later.at(0);
    let wall = wall + Duration::from_secs(100);
    let mut fresh = self::pool(2);
    let saved: HashMap<String, _> = keys
        .into_iter()
        .map(|(id, k)| (id.to_string(), k))
        .collect();
    fresh.restore(provider, &saved, now, wall);
    let status = fresh.status(now, wall);
    assert_eq!(status.keys[0].state, "cooling_down");
    assert_eq!(status.keys[0].cooldown_remaining_secs, 200);
    assert_eq!(status.keys[0].requests, 1);
    assert_eq!(status.keys[1].state, "invalid");
    assert_eq!(
        (status.stats.total_requests, status.stats.rotations),
        (1, 1)
    );
}

#[test]
fn removed_keys_are_not_picked_and_their_late_reports_are_ignored() {
    let clock = Clock::new();
    let mut pool = pool(2);
    let key0 = lease_at(&mut pool, clock.at(0), &[], MODEL).unwrap();
    assert!(pool.remove_key(&key0));
    record(&mut pool, &key0, MODEL, ok(), clock.at(0));
    for _ in 0..3 {
        assert_eq!(
            lease_at(&mut pool, clock.at(0), &[], MODEL)
                .unwrap()
                .as_str(),
            "key1"
        );
    }
    pool.add_key(entry(7, 1));
    assert_eq!(pool.stats(clock.at(0).0).total_keys, 2);
}

#[test]
fn an_empty_pool_has_no_usable_key() {
    let clock = Clock::new();
    let mut pool = pool(0);
    assert!(matches!(
        pool.select(clock.at(0).0, clock.at(0).1, &[], MODEL),
        Selection::NoUsableKey { total: 0, .. }
    ));
}

fn fault() -> Outcome {
    Outcome::Failed(note(500))
}

#[test]
fn a_key_that_keeps_failing_while_its_siblings_succeed_is_ejected_then_probed() {
    let clock = Clock::new();
    let mut pool = pool(4);
    let bad = KeyId::new("key0");
    for other in 1..4 {
        record(
            &mut pool,
            &KeyId::new(format!("key{other}")),
            MODEL,
            ok(),
            clock.at(0),
        );
    }
    for _ in 0..4 {
        record(&mut pool, &bad, MODEL, fault(), clock.at(0));
    }
    assert_eq!(
        pool.status(clock.at(0).0, clock.at(0).1).keys[0].state,
        "active"
    );
    record(&mut pool, &bad, MODEL, fault(), clock.at(0));
    let status = pool.status(clock.at(0).0, clock.at(0).1);
    assert_eq!(status.keys[0].state, "ejected");
    assert_eq!(status.keys[0].ejections, 1);
    assert_eq!(status.stats.ejected_keys, 1);
    let ejection = status.keys[0].ejection.clone().unwrap();
    assert_eq!(ejection.returns_in_secs, 30);
    // Out of rotation for 30 s.
    for _ in 0..30 {
        assert_ne!(
            lease_at(&mut pool, clock.at(29), &[], MODEL),
            Some(bad.clone())
        );
    }
    // Then one probe; while it is out, no other request gets the key.
    let leased: Vec<KeyId> = (0..8)
        .filter_map(|_| lease_at(&mut pool, clock.at(31), &[], MODEL))
        .collect();
    assert_eq!(leased.iter().filter(|id| **id == bad).count(), 1);
    // A failed probe ejects it again, for twice as long.
    record(&mut pool, &bad, MODEL, fault(), clock.at(31));
    let status = pool.status(clock.at(31).0, clock.at(31).1);
    assert_eq!(status.keys[0].state, "ejected");
    assert_eq!(status.keys[0].ejection.clone().unwrap().returns_in_secs, 60);
    assert_eq!(status.keys[0].ejections, 2);
    // A successful probe brings it back for good.
    let probe = (0..8)
        .filter_map(|_| lease_at(&mut pool, clock.at(92), &[], MODEL))
        .find(|id| *id == bad);
    assert!(probe.is_some());
    record(&mut pool, &bad, MODEL, ok(), clock.at(92));
    let status = pool.status(clock.at(92).0, clock.at(92).1);
    assert_eq!(status.keys[0].state, "active");
    assert!(status.keys[0].ejection.is_none());
    let leased: Vec<KeyId> = (0..8)
        .filter_map(|_| lease_at(&mut pool, clock.at(93), &[], MODEL))
        .collect();
    assert_eq!(leased.iter().filter(|id| **id == bad).count(), 2);
}

#[test]
fn when_every_key_fails_none_is_ejected() {
    let clock = Clock::new();
    let mut pool = pool(4);
    for round in 0..10 {
        for i in 0..4 {
            record(
                &mut pool,
                &KeyId::new(format!("key{i}")),
                MODEL,
                fault(),
                clock.at(round),
            );
        }
    }
    let status = pool.status(clock.at(10).0, clock.at(10).1);
    assert!(
        status.keys.iter().all(|k| k.state == "active"),
        "{:?}",
        status.keys.iter().map(|k| k.state).collect::<Vec<_>>()
    );
    assert!(pool.overloaded(clock.at(10).0).is_some());
}

#[test]
fn no_more_than_half_of_the_usable_keys_are_ejected() {
    let clock = Clock::new();
    let mut pool = pool(5);
    for i in 3..5 {
        record(
            &mut pool,
            &KeyId::new(format!("key{i}")),
            MODEL,
            ok(),
            clock.at(0),
        );
    }
    // Three keys keep failing with network errors (no status: they do not
    // count towards "overloaded"), two succeed.
    let network = || {
        Outcome::Failed(FailureNote {
            status: None,
            error_type: "network_error".into(),
            message: "reset".into(),
        })
    };
    for _ in 0..6 {
        for i in 0..3 {
            record(
                &mut pool,
                &KeyId::new(format!("key{i}")),
                MODEL,
                network(),
                clock.at(0),
            );
        }
    }
    let status = pool.status(clock.at(0).0, clock.at(0).1);
    assert_eq!(status.stats.ejected_keys, 2, "floor(5 / 2) at most");
}

#[test]
fn an_ejection_survives_a_restart() {
    let clock = Clock::new();
    let mut pool = pool(2);
    record(&mut pool, &KeyId::new("key1"), MODEL, ok(), clock.at(0));
    for _ in 0..5 {
        record(&mut pool, &KeyId::new("key0"), MODEL, fault(), clock.at(0));
    }
    let (_, saved) = pool.take_changes(clock.at(0).0, clock.at(0).1);
    let saved: HashMap<String, SavedKey> = saved
        .into_iter()
        .map(|(id, key)| (id.to_string(), key))
        .collect();
    let mut restarted = pool_with(2, Strategy::RoundRobin);
    restarted.restore(None, &saved, clock.at(10).0, clock.at(10).1);
    let status = restarted.status(clock.at(10).0, clock.at(10).1);
    assert_eq!(status.keys[0].state, "ejected");
    assert_eq!(status.keys[0].ejections, 1);
    assert_eq!(status.keys[0].ejection.clone().unwrap().returns_in_secs, 20);
}
