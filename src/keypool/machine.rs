//! The pool's state machine: what each upstream outcome does, live key
//! changes, statistics, and the saved form; which key serves next is
//! `leasing`'s part of it. Pure and synchronous; time is passed in (`now`
//! for cooldowns, `wall` for times shown to people or saved), so every
//! transition is tested without sleeps.
//!
//! Invariants: a key that is disabled, invalid, cooling down (for the
//! requested model), half-open with its probe out, or (under `headroom`)
//! out of rate-limit room is never leased. Every change to a slot is
//! reported to the ready index (`mark_changed`), and every change to the
//! key set drops it (`key_set_changed`), so it never answers from a stale
//! view.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::cooldown::CooldownPolicy;
use super::counts::ClusterCounts;
use super::ejection::OutlierPolicy;
use super::marks::{Mark, SharedChange, limits_mark};
use super::ready::ReadyIndex;
use super::scopes::ScopeIndex;
use super::select::Strategy;
use super::slot::KeySlot;
use super::snapshot::{SavedKey, SavedProvider};
use super::status::{PoolStats, PoolStatus};
use crate::domain::{KeyEntry, KeyId, Outcome, ProviderKind, RateLimits};

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
    /// Each key's index in `slots`.
    pub(super) positions: HashMap<KeyId, usize>,
    /// The keys ready to serve, in the strategy's order (see `ready`);
    /// `None` after a change to the key set, until the next pick builds it.
    pub(super) ready: Option<ReadyIndex>,
    /// Slots changed since the ready index last saw them: changes arrive
    /// without the time, which the next pick brings.
    pub(super) changed: Vec<usize>,
    /// Where the round-robin order starts next.
    pub(super) cursor: usize,
    /// `weighted`: the pass of the latest pick (see `select::charge`).
    pub(super) pass_clock: u128,
    /// Which slots share a cache scope (`scopes`), rebuilt with the key
    /// set.
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
        let mut state = Self {
            settings,
            slots: keys.into_iter().map(KeySlot::new).collect(),
            positions: HashMap::new(),
            ready: None,
            changed: Vec::new(),
            cursor: 0,
            scopes: ScopeIndex::default(),
            pass_clock: 0,
            stats: PoolStats::default(),
            stats_dirty: false,
            outbox: None,
            cluster_counts: None,
        };
        state.key_set_changed();
        state
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
        let Some(&index) = self.positions.get(key) else {
            return;
        };
        let probe_failed = self.slots[index].failed_its_probe();
        let recovering = self.is_shared() && self.slots[index].recovering(model, now);
        let ejections = self.slots[index].ejections;
        self.slots[index].record(outcome, model, scope, &policy, now, wall);
        if let Outcome::Failed(note) = outcome {
            self.consider_ejecting(index, probe_failed, &note.message, now);
        }
        self.mark_changed(index);
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
        let Some(&index) = self.positions.get(key) else {
            return;
        };
        self.slots[index].rest(rest, now);
        self.mark_changed(index);
        if self.is_shared() {
            self.share_rest(index, now, wall);
        }
    }

    /// The rate-limit windows an answer reported for `key`.
    pub fn observe(&mut self, key: &KeyId, limits: RateLimits) {
        let Some(slot) = self.slot_mut(key.as_str()) else {
            return;
        };
        slot.limits = Some(limits);
        self.mark_key_changed(key.as_str());
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
        self.key_set_changed();
        self.forget_failures();
        self.emit_reset();
    }

    /// Adds a key (or replaces the entry of one with the same id).
    pub fn add_key(&mut self, entry: KeyEntry) {
        match self.slot_mut(entry.id.as_str()) {
            Some(slot) => slot.entry = entry,
            None => self.slots.push(KeySlot::new(entry)),
        }
        self.key_set_changed();
    }

    /// Makes the pool's keys those of `entries` (the stored set): new ones
    /// join, missing ones leave, names, weights, switches and scopes follow;
    /// the state of keys that stay is kept.
    pub fn sync_keys(&mut self, entries: Vec<KeyEntry>) {
        let stored: std::collections::HashSet<&KeyId> = entries.iter().map(|e| &e.id).collect();
        self.slots.retain(|slot| stored.contains(&slot.entry.id));
        self.key_set_changed();
        for entry in entries {
            match self.slot_mut(entry.id.as_str()) {
                Some(slot) => {
                    slot.entry.name = entry.name;
                    slot.entry.weight = entry.weight;
                    slot.entry.enabled = entry.enabled;
                    slot.entry.scope = entry.scope;
                }
                None => {
                    self.positions.insert(entry.id.clone(), self.slots.len());
                    self.slots.push(KeySlot::new(entry));
                }
            }
        }
        self.key_set_changed();
    }

    /// Removes a key; a request in flight on it still finishes.
    pub fn remove_key(&mut self, key: &KeyId) -> bool {
        let before = self.slots.len();
        self.slots.retain(|s| &s.entry.id != key);
        self.key_set_changed();
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
        if let Some(slot) = self.slot_mut(key.as_str()) {
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
        self.mark_key_changed(key.as_str());
    }

    /// Moves a key to cache `scope` (`None`: its own). Scopes play no part
    /// in the ready index's order, so only the scope index is rebuilt.
    pub fn set_scope(&mut self, key: &KeyId, scope: Option<std::sync::Arc<str>>) {
        if let Some(slot) = self.slot_mut(key.as_str()) {
            slot.entry.scope = scope;
            self.scopes = ScopeIndex::build(&self.slots);
        }
    }

    /// A key check's verdict: `Some(reason)` marks the key invalid, `None`
    /// brings an invalid key back.
    pub fn set_invalid(&mut self, key: &KeyId, reason: Option<String>) {
        let Some(slot) = self.slot_mut(key.as_str()) else {
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
        self.mark_key_changed(key.as_str());
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
        self.key_set_changed();
    }

    pub(super) fn slot_mut(&mut self, key: &str) -> Option<&mut KeySlot> {
        let index = *self.positions.get(key)?;
        self.slots.get_mut(index)
    }

    /// Slot `index` changed: the ready index files it again at the next
    /// pick.
    pub(super) fn mark_changed(&mut self, index: usize) {
        if self.ready.is_none() {
            return;
        }
        self.changed.push(index);
        // Changes heard from other replicas can arrive with no pick in
        // between: past one per key, rebuilding is cheaper.
        if self.changed.len() > self.slots.len() {
            self.key_set_changed();
        }
    }

    pub(super) fn mark_key_changed(&mut self, key: &str) {
        if let Some(&index) = self.positions.get(key) {
            self.mark_changed(index);
        }
    }

    /// Keys joined, left or changed all at once: positions and scopes are
    /// rebuilt and the ready index is dropped, to be rebuilt at the next pick.
    pub(super) fn key_set_changed(&mut self) {
        self.positions = self
            .slots
            .iter()
            .enumerate()
            .map(|(i, slot)| (slot.entry.id.clone(), i))
            .collect();
        self.scopes = ScopeIndex::build(&self.slots);
        self.ready = None;
        self.changed.clear();
        self.cursor = if self.slots.is_empty() {
            0
        } else {
            self.cursor % self.slots.len()
        };
    }

    pub(super) fn invalid_count(&self) -> usize {
        self.slots.iter().filter(|s| s.invalid.is_some()).count()
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
pub(in crate::keypool) mod tests;
