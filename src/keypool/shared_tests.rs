//! Two replicas' pools side by side, each with its own `Instant` origin and
//! one wall clock, passing changes as the cluster would (through JSON).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use secrecy::SecretString;
use tokio::time::Instant;

use super::*;
use crate::domain::{FailureNote, KeyEntry, Outcome, ProviderKind};
use crate::keypool::counts::Counts;
use crate::keypool::{CooldownPolicy, OutlierPolicy, PoolSettings, Selection, Strategy};

const MODEL: Option<&str> = Some("claude-sonnet-4-5");

fn pool(n: usize) -> PoolState {
    let settings = PoolSettings {
        provider: ProviderKind::Anthropic,
        strategy: Strategy::RoundRobin,
        cooldown: CooldownPolicy {
            no_access: Duration::from_secs(3600),
            default: Duration::from_secs(60),
            max: Duration::from_secs(900),
        },
        max_attempts: 3,
        per_model_cooldowns: true,
        outlier: OutlierPolicy {
            consecutive_faults: 5,
            base: Duration::from_secs(30),
            max: Duration::from_secs(900),
        },
    };
    let keys = (0..n)
        .map(|i| KeyEntry {
            id: KeyId::new(format!("key{i}")),
            masked: format!("sk-…{i}"),
            name: None,
            weight: 1,
            enabled: true,
            scope: None,
            secret: Arc::new(SecretString::from(format!("secret-{i}"))),
        })
        .collect();
    let mut state = PoolState::new(settings, keys);
    state.share(Instant::now(), SystemTime::now());
    state
}

/// A replica: its pool and its own monotonic origin.
struct Replica {
    pool: PoolState,
    origin: Instant,
}

impl Replica {
    fn new(n: usize, skew: Duration) -> Self {
        Self {
            pool: pool(n),
            origin: Instant::now() + skew,
        }
    }

    fn at(&self, wall0: SystemTime, millis: u64) -> (Instant, SystemTime) {
        let d = Duration::from_millis(millis);
        (self.origin + d, wall0 + d)
    }

    /// Which keys a request for MODEL could get, in order, without leasing.
    fn servable(&mut self, (now, wall): (Instant, SystemTime)) -> Vec<String> {
        let mut seen = Vec::new();
        let mut tried = Vec::new();
        for _ in 0..self.pool.slots.len() {
            if let Selection::Leased(lease) = self.pool.select(now, wall, &tried, MODEL) {
                self.pool
                    .record(&lease.id, MODEL, &Outcome::Cancelled, now, wall);
                if !seen.contains(&lease.id.to_string()) {
                    seen.push(lease.id.to_string());
                }
                tried.push(lease.id);
            }
        }
        seen.sort();
        seen
    }
}

/// Sends `from`'s outbox to `to`, through the wire form.
fn relay(from: &mut Replica, to: &mut Replica, (now, wall): (Instant, SystemTime)) {
    for change in from.pool.take_shared() {
        let json = serde_json::to_string(&change).unwrap();
        let change: SharedChange = serde_json::from_str(&json).unwrap();
        to.pool.apply_remote(&change, now, wall);
    }
}

fn limited(secs: u64) -> Outcome {
    Outcome::RateLimited {
        cooldown: Some(Duration::from_secs(secs)),
        note: FailureNote {
            status: Some(429),
            error_type: "rate_limit_error".into(),
            message: "slow down".into(),
        },
    }
}

fn ok() -> Outcome {
    Outcome::Success { latency: None }
}

#[test]
fn a_rate_limit_on_one_replica_benches_the_key_on_the_other_without_echo() {
    let wall0 = SystemTime::now();
    let mut a = Replica::new(2, Duration::ZERO);
    let mut b = Replica::new(2, Duration::from_secs(5000));
    let key0 = KeyId::new("key0");
    let (now, wall) = a.at(wall0, 0);
    a.pool.record(&key0, MODEL, &limited(10), now, wall);
    let t = b.at(wall0, 50);
    relay(&mut a, &mut b, t);
    assert_eq!(b.servable(b.at(wall0, 60)), ["key1"]);
    assert_eq!(b.servable(b.at(wall0, 9_900)), ["key1"]);
    assert!(
        b.pool.take_shared().is_empty(),
        "a mark heard is never republished"
    );
    // The rest is over, but B does not probe before its token is settled.
    assert_eq!(b.servable(b.at(wall0, 10_100)), ["key1"]);
    let due = b.pool.probes_due(b.at(wall0, 10_100).0);
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].key, key0);
    assert_eq!(
        due[0].until_ms,
        super::unix_ms(wall0 + Duration::from_secs(10)),
        "both replicas name the same token"
    );
    let (later, _) = b.at(wall0, 10_100);
    b.pool
        .probe_elsewhere(&due[0], later + Duration::from_secs(5));
    assert_eq!(b.servable(b.at(wall0, 12_000)), ["key1"]);
    // A holds the token and probes; its success frees the key on B too.
    let (now, _) = a.at(wall0, 10_100);
    let a_due = a.pool.probes_due(now);
    a.pool.probe_granted(&a_due[0]);
    assert_eq!(a.servable(a.at(wall0, 10_200)), ["key0", "key1"]);
    let (now, wall) = a.at(wall0, 10_300);
    a.pool.record(&key0, MODEL, &ok(), now, wall);
    let t = b.at(wall0, 10_350);
    relay(&mut a, &mut b, t);
    assert_eq!(b.servable(b.at(wall0, 10_400)), ["key0", "key1"]);
}

#[test]
fn concurrent_cooldowns_converge_whatever_the_order() {
    let wall0 = SystemTime::now();
    let mut a = Replica::new(1, Duration::ZERO);
    let mut b = Replica::new(1, Duration::from_secs(70));
    let key0 = KeyId::new("key0");
    let (now, wall) = a.at(wall0, 0);
    a.pool.record(&key0, MODEL, &limited(30), now, wall);
    let (now, wall) = b.at(wall0, 10);
    b.pool.record(&key0, MODEL, &limited(5), now, wall);
    let from_a = a.pool.take_shared();
    let from_b = b.pool.take_shared();
    let (now, wall) = b.at(wall0, 20);
    from_a
        .iter()
        .for_each(|c| b.pool.apply_remote(c, now, wall));
    let (now, wall) = a.at(wall0, 20);
    from_b
        .iter()
        .for_each(|c| a.pool.apply_remote(c, now, wall));
    let ends = |r: &Replica| {
        let (now, wall) = r.at(wall0, 100);
        r.pool.active_marks(now, wall)
    };
    assert_eq!(ends(&a), ends(&b), "the later deadline wins on both");
    assert!(matches!(
        &ends(&a)[0],
        SharedChange::Key { mark: Mark::Cooldown { until_ms, .. }, .. }
            if *until_ms == super::unix_ms(wall0 + Duration::from_secs(30))
    ));
}

#[test]
fn invalid_marks_and_resets_reach_the_other_replica_and_clear_there() {
    let wall0 = SystemTime::now();
    let mut a = Replica::new(2, Duration::ZERO);
    let mut b = Replica::new(2, Duration::from_secs(9));
    let key1 = KeyId::new("key1");
    a.pool.set_invalid(&key1, Some("invalid x-api-key".into()));
    let t = b.at(wall0, 0);
    relay(&mut a, &mut b, t);
    assert_eq!(b.servable(b.at(wall0, 1)), ["key0"]);
    a.pool.set_invalid(&key1, None);
    let t = b.at(wall0, 2);
    relay(&mut a, &mut b, t);
    assert_eq!(b.servable(b.at(wall0, 3)), ["key0", "key1"]);
    let (now, wall) = b.at(wall0, 4);
    b.pool
        .record(&KeyId::new("key0"), MODEL, &limited(60), now, wall);
    let t = a.at(wall0, 5);
    relay(&mut b, &mut a, t);
    assert_eq!(a.servable(a.at(wall0, 6)), ["key1"]);
    a.pool.reset();
    let t = b.at(wall0, 7);
    relay(&mut a, &mut b, t);
    assert_eq!(b.servable(b.at(wall0, 8)), ["key0", "key1"]);
}

#[test]
fn reconnecting_takes_the_clusters_marks_and_keeps_the_ladder() {
    let wall0 = SystemTime::now();
    let mut b = Replica::new(2, Duration::ZERO);
    let (now, wall) = b.at(wall0, 0);
    b.pool
        .record(&KeyId::new("key0"), MODEL, &limited(60), now, wall);
    b.pool.set_invalid(&KeyId::new("key1"), Some("bad".into()));
    // Meanwhile the others learnt the key is fine again and key1 valid,
    // and benched key1 for a while.
    let held = vec![(
        "key1".to_string(),
        Mark::Cooldown {
            model: None,
            until_ms: super::unix_ms(wall0 + Duration::from_secs(20)),
            level: 1,
        },
    )];
    let (now, wall) = b.at(wall0, 1_000);
    b.pool.replace_marks(&held, now, wall);
    assert_eq!(b.servable(b.at(wall0, 1_100)), ["key0"]);
    assert_eq!(b.servable(b.at(wall0, 21_000)), ["key0"]);
    assert_eq!(b.pool.probes_due(b.at(wall0, 21_000).0).len(), 1);
}

#[test]
fn headroom_and_no_access_travel_in_wall_clock_form() {
    let wall0 = SystemTime::now();
    let mut a = Replica::new(1, Duration::ZERO);
    let mut b = Replica::new(1, Duration::from_secs(3));
    let key0 = KeyId::new("key0");
    let limits = crate::domain::RateLimits {
        requests: Some(crate::domain::Window {
            limit: 100,
            remaining: 7,
            reset: Some(std::time::UNIX_EPOCH + Duration::from_millis(1_900_000_000_000)),
        }),
        ..Default::default()
    };
    a.pool.observe(&key0, limits);
    let (now, wall) = a.at(wall0, 0);
    a.pool.record(
        &key0,
        MODEL,
        &Outcome::NoAccess(FailureNote {
            status: Some(403),
            error_type: "permission_error".into(),
            message: "no access to this model".into(),
        }),
        now,
        wall,
    );
    let t = b.at(wall0, 10);
    relay(&mut a, &mut b, t);
    assert_eq!(b.pool.slots[0].limits, Some(limits));
    let (now, _) = b.at(wall0, 20);
    assert!(b.pool.slots[0].lacks_access(MODEL, now).is_some());
}

#[test]
fn cluster_counters_are_shown_with_what_this_replica_counted_since() {
    let mut a = Replica::new(1, Duration::ZERO);
    a.pool.request_started();
    a.pool.request_finished(true, 0);
    let included = a.pool.local_counts();
    let mut totals = Counts {
        provider: [10, 9, 1, 2],
        ..Counts::default()
    };
    totals.keys.insert("key0".into(), [12, 11, 1]);
    a.pool.set_cluster_counts(totals, included);
    a.pool.request_started();
    let (now, _) = a.at(SystemTime::now(), 0);
    let stats = a.pool.stats(now);
    assert_eq!(
        (stats.total_requests, stats.successful_requests),
        (11, 9),
        "the cluster's 10, plus one counted here since"
    );
    assert_eq!(a.pool.shown_key("key0"), [12, 11, 1]);
}

#[test]
fn an_ejection_travels_and_its_probe_needs_the_token_too() {
    let wall0 = SystemTime::now();
    let mut a = Replica::new(2, Duration::ZERO);
    let mut b = Replica::new(2, Duration::from_secs(40));
    let key0 = KeyId::new("key0");
    let fault = Outcome::Failed(FailureNote {
        status: Some(500),
        error_type: "api_error".into(),
        message: "boom".into(),
    });
    for i in 0..5 {
        let (now, wall) = a.at(wall0, i);
        a.pool.record(&key0, MODEL, &fault, now, wall);
    }
    let t = b.at(wall0, 10);
    relay(&mut a, &mut b, t);
    assert_eq!(b.servable(b.at(wall0, 20)), ["key1"], "ejected on B too");
    // Its 30 s are over: B waits for the token before probing.
    assert_eq!(b.servable(b.at(wall0, 30_100)), ["key1"]);
    let due = b.pool.probes_due(b.at(wall0, 30_100).0);
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].scope, ProbeScope::Ejection);
    b.pool.probe_granted(&due[0]);
    assert_eq!(b.servable(b.at(wall0, 30_200)), ["key0", "key1"]);
}

#[test]
fn a_spent_quota_and_a_rest_for_a_shared_quota_bench_the_key_on_the_other_replica() {
    let wall0 = SystemTime::now();
    let mut a = Replica::new(3, Duration::ZERO);
    let mut b = Replica::new(3, Duration::from_secs(900));
    let (key0, key1) = (KeyId::new("key0"), KeyId::new("key1"));
    let (now, wall) = a.at(wall0, 0);
    let spent = Outcome::QuotaSpent {
        rest: Duration::from_secs(3 * 3600),
        note: FailureNote {
            status: Some(429),
            error_type: "rate_limit_error".into(),
            message: "monthly searches used up".into(),
        },
    };
    a.pool.record(&key0, None, &spent, now, wall);
    // key1 shares key0's quota (a Google project): rested without an attempt.
    a.pool.rest(&key1, Duration::from_secs(3 * 3600), now, wall);
    let t = b.at(wall0, 20);
    relay(&mut a, &mut b, t);
    let t = b.at(wall0, 30);
    assert_eq!(b.servable(t), ["key2"]);
    let t = b.at(wall0, 2 * 3600 * 1000);
    assert_eq!(b.servable(t), ["key2"]);
    assert!(a.pool.take_shared().is_empty(), "nothing left to send");
}
