//! The pool's state machine: which key serves next, what each upstream
//! outcome does to a key, and the statistics. Pure and synchronous; time is
//! passed in (`now` for cooldowns, `wall` for timestamps shown to people), so
//! every transition is unit-tested without a runtime or sleeps.
//!
//! Invariants: a key that is cooling down or invalid is never leased; a
//! cooldown is only ever extended by a later 429, never shortened.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::status::{FailureRecord, KeyStatus, PoolStats, PoolStatus};
use super::{FailureNote, KeyEntry, KeyId, KeyLease, Outcome, Selection};

/// How many failures each key remembers.
pub const FAILURE_HISTORY_LEN: usize = 20;

#[derive(Debug, Clone, PartialEq)]
enum Health {
    Active,
    CoolingDown { until: Instant },
    Invalid { reason: String },
}

struct KeySlot {
    entry: KeyEntry,
    health: Health,
    requests: u64,
    successes: u64,
    failures: u64,
    consecutive_failures: u64,
    last_used_at: Option<SystemTime>,
    last_error: Option<String>,
    history: VecDeque<FailureRecord>,
}

impl KeySlot {
    fn new(entry: KeyEntry) -> Self {
        Self {
            entry,
            health: Health::Active,
            requests: 0,
            successes: 0,
            failures: 0,
            consecutive_failures: 0,
            last_used_at: None,
            last_error: None,
            history: VecDeque::with_capacity(FAILURE_HISTORY_LEN),
        }
    }

    fn is_available(&self, now: Instant) -> bool {
        match &self.health {
            Health::Active => true,
            Health::CoolingDown { until } => *until <= now,
            Health::Invalid { .. } => false,
        }
    }

    fn cooling_until(&self, now: Instant) -> Option<Instant> {
        match self.health {
            Health::CoolingDown { until } if until > now => Some(until),
            _ => None,
        }
    }

    fn record_failure(&mut self, note: &FailureNote, wall: SystemTime) {
        self.failures += 1;
        self.consecutive_failures += 1;
        self.last_error = Some(note.message.clone());
        if self.history.len() == FAILURE_HISTORY_LEN {
            self.history.pop_front();
        }
        self.history.push_back(FailureRecord {
            at: format_time(wall),
            status: note.status,
            error_type: note.error_type.clone(),
            message: note.message.clone(),
        });
    }
}

/// All keys of one provider and its counters.
pub struct PoolState {
    provider: &'static str,
    slots: Vec<KeySlot>,
    /// Where the round-robin scan starts next.
    cursor: usize,
    default_cooldown: Duration,
    max_attempts: u32,
    stats: PoolStats,
}

impl PoolState {
    pub fn new(
        provider: &'static str,
        keys: Vec<KeyEntry>,
        default_cooldown: Duration,
        max_attempts: u32,
    ) -> Self {
        Self {
            provider,
            slots: keys.into_iter().map(KeySlot::new).collect(),
            cursor: 0,
            default_cooldown,
            max_attempts,
            stats: PoolStats::default(),
        }
    }

    /// Picks the next available key round-robin, preferring keys this
    /// request has not tried yet; a tried key is reused only when no untried
    /// one is available (a one-key pool still gets its retries).
    pub fn select(&mut self, now: Instant, wall: SystemTime, tried: &[KeyId]) -> Selection {
        let count = self.slots.len();
        let order = (0..count).map(|offset| (self.cursor + offset) % count);
        let untried = order
            .clone()
            .find(|&i| self.slots[i].is_available(now) && !tried.contains(&self.slots[i].entry.id));
        let Some(index) =
            untried.or_else(|| order.clone().find(|&i| self.slots[i].is_available(now)))
        else {
            return self.why_none(now);
        };
        self.cursor = (index + 1) % count;
        let slot = &mut self.slots[index];
        // A cooldown that has run out becomes active on its next use.
        slot.health = Health::Active;
        slot.requests += 1;
        slot.last_used_at = Some(wall);
        Selection::Leased(KeyLease {
            id: slot.entry.id.clone(),
            label: slot.entry.label().to_string(),
            secret: slot.entry.secret.clone(),
        })
    }

    fn why_none(&self, now: Instant) -> Selection {
        match self.slots.iter().filter_map(|s| s.cooling_until(now)).min() {
            Some(first_free) => Selection::AllCoolingDown {
                retry_after: first_free - now,
            },
            None => Selection::NoUsableKey {
                total: self.slots.len(),
                invalid: self.invalid_count(),
            },
        }
    }

    /// Applies an attempt's outcome to its key. Unknown ids (a key removed
    /// meanwhile) are ignored.
    pub fn record(&mut self, key: &KeyId, outcome: &Outcome, now: Instant, wall: SystemTime) {
        let default_cooldown = self.default_cooldown;
        let Some(slot) = self.slots.iter_mut().find(|s| &s.entry.id == key) else {
            return;
        };
        match outcome {
            Outcome::Success => {
                slot.successes += 1;
                slot.consecutive_failures = 0;
            }
            Outcome::RateLimited { cooldown, note } => {
                slot.record_failure(note, wall);
                let until = now + cooldown.unwrap_or(default_cooldown);
                slot.health = match slot.health {
                    Health::Invalid { .. } => slot.health.clone(),
                    Health::CoolingDown { until: current } if current > until => {
                        slot.health.clone()
                    }
                    _ => Health::CoolingDown { until },
                };
            }
            Outcome::Rejected(note) => {
                slot.record_failure(note, wall);
                slot.health = Health::Invalid {
                    reason: note.message.clone(),
                };
            }
            Outcome::Failed(note) => slot.record_failure(note, wall),
            Outcome::RequestFault => {}
        }
    }

    pub fn request_started(&mut self) {
        self.stats.total_requests += 1;
    }

    pub fn request_finished(&mut self, succeeded: bool, rotations: u32) {
        if succeeded {
            self.stats.successful_requests += 1;
        } else {
            self.stats.failed_requests += 1;
        }
        self.stats.rotations += u64::from(rotations);
    }

    /// Clears failures, histories, cooldowns and invalid marks; request and
    /// success totals stay.
    pub fn reset(&mut self) {
        for slot in &mut self.slots {
            slot.health = Health::Active;
            slot.failures = 0;
            slot.consecutive_failures = 0;
            slot.last_error = None;
            slot.history.clear();
        }
    }

    pub fn stats(&self, now: Instant) -> PoolStats {
        let cooling = self
            .slots
            .iter()
            .filter(|s| s.cooling_until(now).is_some())
            .count();
        let invalid = self.invalid_count();
        PoolStats {
            total_keys: self.slots.len(),
            available_keys: self.slots.iter().filter(|s| s.is_available(now)).count(),
            cooling_down_keys: cooling,
            invalid_keys: invalid,
            ..self.stats.clone()
        }
    }

    pub fn status(&self, now: Instant) -> PoolStatus {
        PoolStatus {
            provider: self.provider,
            strategy: "round_robin",
            cooldown_secs: self.default_cooldown.as_secs_f64(),
            max_attempts: self.max_attempts,
            stats: self.stats(now),
            keys: self
                .slots
                .iter()
                .map(|slot| key_status(slot, now))
                .collect(),
        }
    }

    fn invalid_count(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| matches!(s.health, Health::Invalid { .. }))
            .count()
    }
}

fn key_status(slot: &KeySlot, now: Instant) -> KeyStatus {
    let (state, remaining, invalid_reason) = match &slot.health {
        Health::Invalid { reason } => ("invalid", Duration::ZERO, Some(reason.clone())),
        _ => match slot.cooling_until(now) {
            Some(until) => ("cooling_down", until - now, None),
            None => ("active", Duration::ZERO, None),
        },
    };
    KeyStatus {
        id: slot.entry.id.clone(),
        label: slot.entry.label().to_string(),
        state,
        cooldown_remaining_secs: ceil_secs(remaining),
        invalid_reason,
        requests: slot.requests,
        successes: slot.successes,
        failures: slot.failures,
        consecutive_failures: slot.consecutive_failures,
        last_used_at: slot.last_used_at.map(format_time),
        last_error: slot.last_error.clone(),
        failure_history: slot.history.iter().cloned().collect(),
    }
}

/// Whole seconds, rounded up, so "0" only ever means "now".
pub fn ceil_secs(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

fn format_time(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;
    use std::sync::Arc;

    fn pool(n: usize) -> PoolState {
        let keys = (0..n)
            .map(|i| KeyEntry {
                id: KeyId::new(format!("key{i}")),
                masked: format!("sk-…{i}"),
                name: None,
                weight: 1,
                enabled: true,
                secret: Arc::new(SecretString::from(format!("secret-{i}"))),
            })
            .collect();
        PoolState::new("anthropic", keys, Duration::from_secs(60), 3)
    }

    fn lease(pool: &mut PoolState, now: Instant, tried: &[KeyId]) -> KeyId {
        match pool.select(now, SystemTime::now(), tried) {
            Selection::Leased(lease) => lease.id,
            _ => panic!("expected a key"),
        }
    }

    fn note(status: u16) -> FailureNote {
        FailureNote {
            status: Some(status),
            error_type: "x".into(),
            message: "m".into(),
        }
    }

    fn rate_limited(secs: u64) -> Outcome {
        Outcome::RateLimited {
            cooldown: Some(Duration::from_secs(secs)),
            note: note(429),
        }
    }

    #[test]
    fn round_robin_spreads_over_all_keys() {
        let mut pool = pool(3);
        let now = Instant::now();
        let ids: Vec<String> = (0..6)
            .map(|_| lease(&mut pool, now, &[]).to_string())
            .collect();
        assert_eq!(ids, ["key0", "key1", "key2", "key0", "key1", "key2"]);
    }

    #[test]
    fn untried_keys_come_first_then_tried_ones_are_reused() {
        let mut pool = pool(2);
        let now = Instant::now();
        let first = lease(&mut pool, now, &[]);
        let second = lease(&mut pool, now, std::slice::from_ref(&first));
        assert_ne!(first, second);
        let third = lease(&mut pool, now, &[first.clone(), second.clone()]);
        assert!(third == first || third == second);
    }

    #[test]
    fn cooldown_benches_a_key_until_it_expires() {
        let mut pool = pool(2);
        let now = Instant::now();
        let key0 = lease(&mut pool, now, &[]);
        pool.record(&key0, &rate_limited(30), now, SystemTime::now());
        for _ in 0..3 {
            assert_ne!(lease(&mut pool, now, &[]), key0);
        }
        let stats = pool.stats(now);
        assert_eq!((stats.available_keys, stats.cooling_down_keys), (1, 1));
        let later = now + Duration::from_secs(30);
        let used: Vec<KeyId> = (0..2).map(|_| lease(&mut pool, later, &[])).collect();
        assert!(
            used.contains(&key0),
            "key comes back once its cooldown ends"
        );
    }

    #[test]
    fn a_later_429_extends_but_never_shortens() {
        let mut pool = pool(1);
        let now = Instant::now();
        let key = lease(&mut pool, now, &[]);
        pool.record(&key, &rate_limited(100), now, SystemTime::now());
        pool.record(&key, &rate_limited(5), now, SystemTime::now());
        assert_eq!(pool.status(now).keys[0].cooldown_remaining_secs, 100);
        pool.record(&key, &rate_limited(200), now, SystemTime::now());
        assert_eq!(pool.status(now).keys[0].cooldown_remaining_secs, 200);
    }

    #[test]
    fn default_cooldown_applies_without_a_hint() {
        let mut pool = pool(1);
        let now = Instant::now();
        let key = lease(&mut pool, now, &[]);
        let outcome = Outcome::RateLimited {
            cooldown: None,
            note: note(429),
        };
        pool.record(&key, &outcome, now, SystemTime::now());
        match pool.select(now, SystemTime::now(), &[]) {
            Selection::AllCoolingDown { retry_after } => {
                assert_eq!(retry_after, Duration::from_secs(60))
            }
            _ => panic!("expected all cooling down"),
        }
    }

    #[test]
    fn rejected_keys_leave_rotation_until_reset() {
        let mut pool = pool(1);
        let now = Instant::now();
        let key = lease(&mut pool, now, &[]);
        pool.record(&key, &Outcome::Rejected(note(401)), now, SystemTime::now());
        assert!(matches!(
            pool.select(now, SystemTime::now(), &[]),
            Selection::NoUsableKey {
                total: 1,
                invalid: 1
            }
        ));
        pool.reset();
        assert_eq!(lease(&mut pool, now, &[]), key);
        let status = pool.status(now);
        assert_eq!(status.keys[0].failures, 0);
        assert_eq!(status.keys[0].requests, 2, "reset keeps request totals");
    }

    #[test]
    fn failures_are_counted_and_history_is_bounded() {
        let mut pool = pool(1);
        let now = Instant::now();
        let key = lease(&mut pool, now, &[]);
        for _ in 0..25 {
            pool.record(&key, &Outcome::Failed(note(500)), now, SystemTime::now());
        }
        let status = &pool.status(now).keys[0];
        assert_eq!((status.failures, status.consecutive_failures), (25, 25));
        assert_eq!(status.failure_history.len(), FAILURE_HISTORY_LEN);
        assert_eq!(status.state, "active", "a 5xx does not cool a key down");
        pool.record(&key, &Outcome::Success, now, SystemTime::now());
        assert_eq!(pool.status(now).keys[0].consecutive_failures, 0);
    }

    #[test]
    fn request_counters_add_up() {
        let mut pool = pool(1);
        pool.request_started();
        pool.request_started();
        pool.request_finished(true, 0);
        pool.request_finished(false, 2);
        let stats = pool.stats(Instant::now());
        assert_eq!(
            (
                stats.total_requests,
                stats.successful_requests,
                stats.failed_requests,
                stats.rotations
            ),
            (2, 1, 1, 2)
        );
    }

    #[test]
    fn an_empty_pool_has_no_usable_key() {
        let mut pool = pool(0);
        assert!(matches!(
            pool.select(Instant::now(), SystemTime::now(), &[]),
            Selection::NoUsableKey { total: 0, .. }
        ));
    }
}
