//! The pool's state machine: which key serves next, what each upstream
//! outcome does, live key changes, statistics, and the saved form. Pure and
//! synchronous; time is passed in (`now` for cooldowns, `wall` for times
//! shown to people or saved), so every transition is tested without sleeps.
//!
//! Invariants: a key that is disabled, invalid, cooling down (for the
//! requested model), half-open with its probe out, or (under `headroom`)
//! out of rate-limit room is never leased.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::Selection;
use super::cooldown::CooldownPolicy;
use super::counts::ClusterCounts;
use super::ejection::OutlierPolicy;
use super::marks::{Mark, SharedChange, limits_mark};
use super::scopes::ScopeIndex;
use super::select::{Strategy, pick};
use super::slot::KeySlot;
use super::snapshot::{SavedKey, SavedProvider};
use super::status::{PoolStats, PoolStatus};
use crate::domain::{FailureNote, KeyEntry, KeyId, KeyLease, Outcome, ProviderKind, RateLimits};

/// How recent a provider fault must be to count towards "overloaded".
const OVERLOAD_WINDOW: Duration = Duration::from_secs(30);

/// A pool's fixed settings.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub provider: ProviderKind,
    pub strategy: Strategy,
    pub cooldown: CooldownPolicy,
    pub max_attempts: u32,
    /// The upstream limits per model (Anthropic): a 429 benches the key for
    /// that model only.
    pub per_model_cooldowns: bool,
    /// When a key that keeps failing is ejected, and for how long.
    pub outlier: OutlierPolicy,
}

pub struct PoolState {
    pub(super) settings: PoolSettings,
    pub(super) slots: Vec<KeySlot>,
    /// Where the round-robin order starts next.
    pub(super) cursor: usize,
    /// Which slots share a cache scope (`scopes`).
    pub(super) scopes: ScopeIndex,
    pub(super) stats: PoolStats,
    stats_dirty: bool,
    /// Changes to share with other replicas (`None`: not in a cluster).
    pub(super) outbox: Option<Vec<SharedChange>>,
    /// Cluster-wide counters, when a cluster reports them (`counts`).
    pub(super) cluster_counts: Option<ClusterCounts>,
}

impl PoolState {
    pub fn new(settings: PoolSettings, keys: Vec<KeyEntry>) -> Self {
        let slots: Vec<KeySlot> = keys.into_iter().map(KeySlot::new).collect();
        Self {
            settings,
            scopes: ScopeIndex::build(&slots),
            slots,
            cursor: 0,
            stats: PoolStats::default(),
            stats_dirty: false,
            outbox: None,
            cluster_counts: None,
        }
    }

    /// Picks a key for an attempt at `model`, preferring keys this request
    /// has not tried; a tried key is reused only when no untried one can
    /// serve (a one-key pool still gets its retries).
    pub fn select(
        &mut self,
        now: Instant,
        wall: SystemTime,
        tried: &[KeyId],
        model: Option<&str>,
    ) -> Selection {
        self.select_excluding(now, wall, tried, &[], model)
    }

    /// `select`, never picking a key in `spent`; when only spent keys
    /// could serve, `Selection::Spent`.
    pub fn select_excluding(
        &mut self,
        now: Instant,
        wall: SystemTime,
        tried: &[KeyId],
        spent: &[KeyId],
        model: Option<&str>,
    ) -> Selection {
        let count = self.slots.len();
        let headroom = self.settings.strategy == Strategy::Headroom;
        let order: Vec<usize> = (0..count)
            .map(|offset| (self.cursor + offset) % count)
            .filter(|&i| {
                let slot = &self.slots[i];
                slot.can_serve(model, now)
                    && !(headroom && slot.limits.is_some_and(|l| l.exhausted_for(wall).is_some()))
            })
            .collect();
        let untried: Vec<usize> = order
            .iter()
            .copied()
            .filter(|&i| !tried.contains(&self.slots[i].entry.id))
            .collect();
        let candidates = if untried.is_empty() { order } else { untried };
        if candidates.is_empty() {
            return self.why_none(model, now, wall);
        }
        let candidates: Vec<usize> = candidates
            .into_iter()
            .filter(|&i| !spent.contains(&self.slots[i].entry.id))
            .collect();
        if candidates.is_empty() {
            return Selection::Spent;
        }
        let index = pick(
            self.settings.strategy,
            &candidates,
            &mut self.slots,
            now,
            wall,
        );
        self.lease_at(index, model, now, wall)
    }

    /// Leases the key at `index` (picked by a strategy) and moves the
    /// round-robin cursor past it.
    pub(super) fn lease_at(
        &mut self,
        index: usize,
        model: Option<&str>,
        now: Instant,
        wall: SystemTime,
    ) -> Selection {
        self.cursor = (index + 1) % self.slots.len();
        let scope = self.scopes.name_of(index);
        let slot = &mut self.slots[index];
        slot.lease(model, now, wall);
        Selection::Leased(KeyLease {
            id: slot.entry.id.clone(),
            secret: slot.entry.secret.clone(),
            scope,
            token_limit: slot.limits.and_then(|l| l.token_limit()),
        })
    }

    fn why_none(&self, model: Option<&str>, now: Instant, wall: SystemTime) -> Selection {
        let usable: Vec<&KeySlot> = self.slots.iter().filter(|s| s.is_usable()).collect();
        if usable.is_empty() {
            return Selection::NoUsableKey {
                total: self.slots.len(),
                invalid: self.invalid_count(),
            };
        }
        // Keys without access to the model will not get it by waiting.
        let usable: Vec<&KeySlot> = usable
            .into_iter()
            .filter(|s| s.lacks_access(model, now).is_none())
            .collect();
        if usable.is_empty() {
            let note = self
                .slots
                .iter()
                .find_map(|s| s.lacks_access(model, now))
                .cloned()
                .unwrap_or_else(|| FailureNote {
                    status: Some(403),
                    error_type: "permission_error".into(),
                    message: "no key has access to this model".into(),
                });
            return Selection::NoAccess(note);
        }
        // Every usable key is resting, probing, or out of room: the first
        // to come back decides the wait.
        let wait = usable
            .iter()
            .filter_map(|slot| {
                let ejected = slot
                    .ejection
                    .as_ref()
                    .filter(|e| e.is_active(now))
                    .map(|e| e.until);
                let cooling = slot
                    .blocked_until(model, now)
                    .max(ejected)
                    .map(|until| until - now);
                let room = slot.limits.and_then(|l| l.exhausted_for(wall));
                match (cooling, room) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                }
            })
            .min()
            .unwrap_or(Duration::from_secs(1));
        Selection::AllCoolingDown { retry_after: wait }
    }

    /// Applies an attempt's outcome to its key; ids no longer in the pool
    /// (a key removed meanwhile) are ignored.
    pub fn record(
        &mut self,
        key: &KeyId,
        model: Option<&str>,
        outcome: &Outcome,
        now: Instant,
        wall: SystemTime,
    ) {
        let scope = if self.settings.per_model_cooldowns {
            model
        } else {
            None
        };
        let policy = self.settings.cooldown;
        let Some(index) = self.slots.iter().position(|s| s.entry.id == *key) else {
            return;
        };
        let probe_failed = self.slots[index].failed_its_probe();
        let recovering = self.is_shared() && self.slots[index].recovering(model, now);
        let ejections = self.slots[index].ejections;
        self.slots[index].record(outcome, model, scope, &policy, now, wall);
        if let Outcome::Failed(note) = outcome {
            self.consider_ejecting(index, probe_failed, &note.message, now);
        }
        if self.is_shared() {
            self.share_outcome(
                index, outcome, model, scope, recovering, ejections, now, wall,
            );
        }
    }

    /// Ejects the key at `index` if it has become an outlier: its probe
    /// after an ejection failed, or it met `consecutive_faults` provider
    /// faults in a row while the pool as a whole is not in trouble, and
    /// ejecting it leaves at least half of the usable keys in rotation.
    fn consider_ejecting(&mut self, index: usize, probe_failed: bool, reason: &str, now: Instant) {
        let policy = self.settings.outlier;
        if policy.consecutive_faults == 0 {
            return;
        }
        if probe_failed {
            self.slots[index].eject(&policy, reason.to_string(), now);
            return;
        }
        if self.slots[index].consecutive_faults < policy.consecutive_faults
            || self.overloaded(now).is_some()
        {
            return;
        }
        let usable = self.slots.iter().filter(|s| s.is_usable()).count();
        let out = self
            .slots
            .iter()
            .filter(|s| s.is_usable() && s.ejection.as_ref().is_some_and(|e| e.blocks(now)))
            .count();
        let siblings_succeed = self.slots.iter().enumerate().any(|(i, s)| {
            i != index
                && s.is_usable()
                && s.ejection.is_none()
                && s.consecutive_faults < policy.consecutive_faults
        });
        if siblings_succeed && (out + 1) * 2 <= usable {
            self.slots[index].eject(&policy, reason.to_string(), now);
        }
    }

    /// Rests `key` for exactly `rest` without counting an attempt: a
    /// quota it shares with a key that just ran out (a Google project's).
    pub fn rest(&mut self, key: &KeyId, rest: Duration, now: Instant, wall: SystemTime) {
        let Some(index) = self.slots.iter().position(|s| &s.entry.id == key) else {
            return;
        };
        self.slots[index].rest(rest, now);
        if self.is_shared() {
            self.share_rest(index, now, wall);
        }
    }

    /// The rate-limit windows an answer reported for `key`.
    pub fn observe(&mut self, key: &KeyId, limits: RateLimits) {
        let Some(slot) = self.slot_mut(key) else {
            return;
        };
        slot.limits = Some(limits);
        if self.is_shared() {
            self.emit(key, limits_mark(&limits));
        }
    }

    pub fn request_started(&mut self) {
        self.stats.total_requests += 1;
        self.stats_dirty = true;
    }

    pub fn request_finished(&mut self, succeeded: bool, rotations: u32) {
        if succeeded {
            self.stats.successful_requests += 1;
        } else {
            self.stats.failed_requests += 1;
        }
        self.stats.rotations += u64::from(rotations);
        self.stats_dirty = true;
    }

    /// Clears failures, histories, cooldowns and invalid marks; request and
    /// success totals stay.
    pub fn reset(&mut self) {
        self.slots.iter_mut().for_each(KeySlot::reset);
        self.forget_failures();
        self.emit_reset();
    }

    /// Adds a key (or replaces the entry of one with the same id).
    pub fn add_key(&mut self, entry: KeyEntry) {
        match self.slot_mut(&entry.id) {
            Some(slot) => slot.entry = entry,
            None => self.slots.push(KeySlot::new(entry)),
        }
        self.scopes = ScopeIndex::build(&self.slots);
    }

    /// Makes the pool's keys those of `entries` (the stored set): new ones
    /// join, missing ones leave, names, weights, switches and scopes follow; the
    /// state of keys that stay is kept.
    pub fn sync_keys(&mut self, entries: Vec<KeyEntry>) {
        self.slots
            .retain(|slot| entries.iter().any(|e| e.id == slot.entry.id));
        for entry in entries {
            match self.slot_mut(&entry.id) {
                Some(slot) => {
                    slot.entry.name = entry.name;
                    slot.entry.weight = entry.weight;
                    slot.entry.enabled = entry.enabled;
                    slot.entry.scope = entry.scope;
                }
                None => self.slots.push(KeySlot::new(entry)),
            }
        }
        self.scopes = ScopeIndex::build(&self.slots);
        self.cursor = if self.slots.is_empty() {
            0
        } else {
            self.cursor % self.slots.len()
        };
    }

    /// Removes a key; a request in flight on it still finishes.
    pub fn remove_key(&mut self, key: &KeyId) -> bool {
        let before = self.slots.len();
        self.slots.retain(|s| &s.entry.id != key);
        self.scopes = ScopeIndex::build(&self.slots);
        self.cursor = if self.slots.is_empty() {
            0
        } else {
            self.cursor % self.slots.len()
        };
        self.slots.len() != before
    }

    /// Updates an admin's name, weight or switch for a key.
    pub fn update_key(
        &mut self,
        key: &KeyId,
        name: Option<Option<String>>,
        weight: Option<u32>,
        enabled: Option<bool>,
    ) {
        if let Some(slot) = self.slot_mut(key) {
            if let Some(name) = name {
                slot.entry.name = name;
            }
            if let Some(weight) = weight {
                slot.entry.weight = weight;
            }
            if let Some(enabled) = enabled {
                slot.entry.enabled = enabled;
            }
            slot.dirty = true;
        }
    }

    /// Moves a key to cache `scope` (`None`: its own).
    pub fn set_scope(&mut self, key: &KeyId, scope: Option<std::sync::Arc<str>>) {
        if let Some(slot) = self.slot_mut(key) {
            slot.entry.scope = scope;
            self.scopes = ScopeIndex::build(&self.slots);
        }
    }

    /// A key check's verdict: `Some(reason)` marks the key invalid, `None`
    /// brings an invalid key back.
    pub fn set_invalid(&mut self, key: &KeyId, reason: Option<String>) {
        let Some(slot) = self.slot_mut(key) else {
            return;
        };
        let mark = match &reason {
            Some(reason) => Mark::Invalid {
                reason: reason.clone(),
            },
            None => Mark::Valid,
        };
        slot.invalid = reason;
        slot.dirty = true;
        self.emit(key, mark);
    }

    /// Most usable keys met provider faults in the last 30 s: the
    /// provider's trouble, not the keys'. Returns (failing, usable).
    pub fn overloaded(&self, now: Instant) -> Option<(usize, usize)> {
        let usable: Vec<&KeySlot> = self.slots.iter().filter(|s| s.is_usable()).collect();
        let failing = usable
            .iter()
            .filter(|s| {
                s.last_fault
                    .is_some_and(|at| now.duration_since(at) < OVERLOAD_WINDOW)
            })
            .count();
        (!usable.is_empty() && failing * 2 > usable.len()).then_some((failing, usable.len()))
    }

    pub fn stats(&self, now: Instant) -> PoolStats {
        PoolStats {
            total_keys: self.slots.len(),
            available_keys: self
                .slots
                .iter()
                .filter(|s| {
                    s.is_usable() && !s.is_ejected(now) && s.any_active_cooldown(now).is_none()
                })
                .count(),
            cooling_down_keys: self
                .slots
                .iter()
                .filter(|s| {
                    s.is_usable() && !s.is_ejected(now) && s.any_active_cooldown(now).is_some()
                })
                .count(),
            ejected_keys: self
                .slots
                .iter()
                .filter(|s| s.is_usable() && s.is_ejected(now))
                .count(),
            invalid_keys: self.invalid_count(),
            disabled_keys: self.slots.iter().filter(|s| !s.entry.enabled).count(),
            ..self.shown_stats()
        }
    }

    /// Every key's secret, for the scrubber.
    pub fn secrets(&self) -> impl Iterator<Item = &secrecy::SecretString> {
        self.slots.iter().map(|slot| slot.entry.secret.as_ref())
    }

    pub fn status(&self, now: Instant, wall: SystemTime) -> PoolStatus {
        let mut status = PoolStatus {
            provider: self.settings.provider,
            strategy: self.settings.strategy.as_str(),
            cooldown_secs: self.settings.cooldown.default.as_secs_f64(),
            cooldown_max_secs: self.settings.cooldown.max.as_secs_f64(),
            max_attempts: self.settings.max_attempts,
            stats: self.stats(now),
            keys: self
                .slots
                .iter()
                .map(|slot| super::status::key_status(slot, now, wall))
                .collect(),
        };
        for key in &mut status.keys {
            [key.requests, key.successes, key.failures] = self.shown_key(key.id.as_str());
        }
        status
    }

    /// The state to save: provider counters and every key changed since
    /// the last call (their change marks are cleared).
    pub fn take_changes(
        &mut self,
        now: Instant,
        wall: SystemTime,
    ) -> (Option<SavedProvider>, Vec<(KeyId, SavedKey)>) {
        // In a cluster the saved counters are the cluster's: every replica
        // writes (nearly) the same figures, so none overwrites another's.
        let shown = self.shown_stats();
        let provider =
            std::mem::take(&mut self.stats_dirty).then(|| SavedProvider::from_stats(&shown));
        let mut keys: Vec<(KeyId, SavedKey)> = self
            .slots
            .iter_mut()
            .filter_map(|slot| {
                std::mem::take(&mut slot.dirty)
                    .then(|| (slot.entry.id.clone(), SavedKey::from_slot(slot, now, wall)))
            })
            .collect();
        for (id, saved) in &mut keys {
            [saved.requests, saved.successes, saved.failures] = self.shown_key(id.as_str());
        }
        (provider, keys)
    }

    /// Brings back saved state for the keys and the provider counters.
    pub fn restore(
        &mut self,
        provider: Option<SavedProvider>,
        keys: &HashMap<String, SavedKey>,
        now: Instant,
        wall: SystemTime,
    ) {
        if let Some(saved) = provider {
            saved.apply_to(&mut self.stats);
        }
        for slot in &mut self.slots {
            if let Some(saved) = keys.get(slot.entry.id.as_str()) {
                saved.apply_to(slot, now, wall);
            }
        }
    }

    fn slot_mut(&mut self, key: &KeyId) -> Option<&mut KeySlot> {
        self.slots.iter_mut().find(|s| &s.entry.id == key)
    }

    fn invalid_count(&self) -> usize {
        self.slots.iter().filter(|s| s.invalid.is_some()).count()
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
pub(in crate::keypool) mod tests;
