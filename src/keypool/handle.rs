//! The pool's owner and the request path's view of it: cheap to clone, one
//! provider's `PoolState` behind a short synchronous lock.
//!
//! Why a lock and not an actor: every attempt asks for a key and reports its
//! outcome, and a round trip to an actor task costs two task wake-ups and a
//! channel allocation per question, which under load was the largest share
//! of keygate's own CPU. The state machine is pure and fast (microseconds),
//! the lock is never held across an `.await`, and so it is never contended
//! for longer than one decision. Ordering is kept: an outcome reported
//! before the next key request is applied before it, so a 429'd key is
//! never handed out again by a race.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::SystemTime;

use tokio::sync::mpsc;

use tokio::time::Instant;

use super::Selection;
use super::counts::Counts;
use super::machine::PoolState;
use super::shared::{Mark, ProbeDue, SharedChange};
use super::snapshot::{SavedKey, SavedProvider};
use super::status::{PoolStats, PoolStatus};
use crate::domain::{KeyEntry, KeyId, Outcome, ProviderKind, RateLimits};
use crate::scrub::Scrubber;

/// What changed since the last save: the provider counters (if they did)
/// and each changed key, in their saved form.
pub type Changes = (Option<SavedProvider>, Vec<(KeyId, SavedKey)>);

/// The pool's state can no longer be trusted: code panicked while changing
/// it. Callers answer 503 rather than serve from a half-applied decision.
#[derive(Debug, thiserror::Error)]
#[error("the key pool is not available")]
pub struct PoolUnavailable;

#[derive(Clone)]
pub struct KeyPoolHandle {
    provider: ProviderKind,
    state: Arc<Mutex<PoolState>>,
    /// Learns every key that enters the pool, so no echo of it is ever
    /// shown; shared by all pools.
    scrubber: Arc<Scrubber>,
    /// Where changes to share with other replicas go, once the pool is in
    /// a cluster.
    outlet: Arc<OnceLock<SharedOutlet>>,
}

/// The pools' side of the cluster publisher's queue. Sending never waits:
/// a full queue drops the changes and raises `overflowed`, and the
/// publisher then sends every key's marks in force instead.
#[derive(Clone)]
pub struct SharedOutlet {
    pub sender: mpsc::Sender<(ProviderKind, Vec<SharedChange>)>,
    pub overflowed: Arc<AtomicBool>,
}

impl KeyPoolHandle {
    /// Takes ownership of `state`, teaching `scrubber` its keys.
    pub fn new(provider: ProviderKind, state: PoolState, scrubber: Arc<Scrubber>) -> Self {
        for secret in state.secrets() {
            scrubber.learn(secret);
        }
        Self {
            provider,
            state: Arc::new(Mutex::new(state)),
            scrubber,
            outlet: Arc::new(OnceLock::new()),
        }
    }

    /// Makes the pool part of a cluster: its changes go to `outlet`.
    pub fn share(&self, outlet: SharedOutlet) {
        self.tell(|state, now, wall| state.share(now, wall));
        let _ = self.outlet.set(outlet);
    }

    /// The scrubber that knows every pool's keys.
    pub fn scrubber(&self) -> &Arc<Scrubber> {
        &self.scrubber
    }

    pub fn provider(&self) -> ProviderKind {
        self.provider
    }

    /// Runs `f` on the state with the current time. A poisoned lock (a
    /// panic inside the state machine) makes the pool unavailable.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut PoolState, Instant, SystemTime) -> T,
    ) -> Result<T, PoolUnavailable> {
        let mut state: MutexGuard<'_, PoolState> =
            self.state.lock().map_err(|_| PoolUnavailable)?;
        let answer = f(&mut state, Instant::now(), SystemTime::now());
        if let Some(outlet) = self.outlet.get() {
            let changes = state.take_shared();
            if !changes.is_empty() && outlet.sender.try_send((self.provider, changes)).is_err() {
                outlet.overflowed.store(true, Ordering::Relaxed);
            }
        }
        Ok(answer)
    }

    /// Changes that need no answer: a poisoned pool has nothing to keep.
    fn tell(&self, f: impl FnOnce(&mut PoolState, Instant, SystemTime)) {
        let _ = self.with(f);
    }

    /// Asks for a key for the next attempt at `model`; `tried` are the
    /// keys this request already used, `spent` those it must not use again
    /// (they can never serve it).
    pub fn acquire(
        &self,
        tried: &[KeyId],
        spent: &[KeyId],
        model: Option<&Arc<str>>,
    ) -> Result<Selection, PoolUnavailable> {
        self.with(|state, now, wall| {
            state.select_excluding(now, wall, tried, spent, model.map(|m| &**m))
        })
    }

    /// `acquire`, preferring a key of cache `scope` (see
    /// `PoolState::select_preferring`).
    pub fn acquire_preferring(
        &self,
        tried: &[KeyId],
        spent: &[KeyId],
        model: Option<&Arc<str>>,
        scope: Option<&str>,
    ) -> Result<Selection, PoolUnavailable> {
        self.with(|state, now, wall| {
            state.select_preferring(now, wall, tried, spent, model.map(|m| &**m), scope)
        })
    }

    /// Asks for `key` itself, for a call on a resource only it can see.
    pub fn acquire_bound(
        &self,
        key: &KeyId,
        model: Option<&Arc<str>>,
    ) -> Result<Selection, PoolUnavailable> {
        self.with(|state, now, wall| state.select_bound(now, wall, key, model.map(|m| &**m)))
    }

    /// Records an attempt's outcome.
    pub fn report(&self, key: &KeyId, model: Option<&Arc<str>>, outcome: Outcome) {
        self.tell(|state, now, wall| state.record(key, model.map(|m| &**m), &outcome, now, wall));
    }

    /// Rests `key` for exactly `rest`, counting no attempt (see
    /// `PoolState::rest`).
    pub fn rest(&self, key: &KeyId, rest: std::time::Duration) {
        self.tell(|state, now, wall| state.rest(key, rest, now, wall));
    }

    /// Records the rate-limit windows an answer reported.
    pub fn observe(&self, key: &KeyId, limits: RateLimits) {
        self.tell(|state, _, _| state.observe(key, limits));
    }

    pub fn add_key(&self, entry: KeyEntry) {
        self.scrubber.learn(&entry.secret);
        self.tell(|state, _, _| state.add_key(entry));
    }

    /// Mirrors the stored key set (see `PoolState::sync_keys`).
    pub fn sync_keys(&self, entries: Vec<KeyEntry>) {
        for entry in &entries {
            self.scrubber.learn(&entry.secret);
        }
        self.tell(|state, _, _| state.sync_keys(entries));
    }

    pub fn remove_key(&self, key: &KeyId) {
        self.tell(|state, _, _| {
            state.remove_key(key);
        });
    }

    /// `name: Some(None)` clears the name.
    pub fn update_key(
        &self,
        key: &KeyId,
        name: Option<Option<String>>,
        weight: Option<u32>,
        enabled: Option<bool>,
    ) {
        self.tell(|state, _, _| state.update_key(key, name, weight, enabled));
    }

    /// Moves a key to cache `scope` (`None`: its own).
    pub fn set_scope(&self, key: &KeyId, scope: Option<Arc<str>>) {
        self.tell(|state, _, _| state.set_scope(key, scope));
    }

    pub fn set_invalid(&self, key: &KeyId, reason: Option<String>) {
        self.tell(|state, _, _| state.set_invalid(key, reason));
    }

    /// How many keys the pool holds, whatever their state: O(1), for the
    /// request path (`stats` counts every key's state).
    pub fn key_count(&self) -> Result<usize, PoolUnavailable> {
        self.with(|state, _, _| state.slots.len())
    }

    pub fn stats(&self) -> Result<PoolStats, PoolUnavailable> {
        self.with(|state, now, _| state.stats(now))
    }

    pub fn status(&self) -> Result<PoolStatus, PoolUnavailable> {
        self.with(|state, now, wall| state.status(now, wall))
    }

    pub fn reset(&self) -> Result<PoolStatus, PoolUnavailable> {
        self.with(|state, now, wall| {
            state.reset();
            state.status(now, wall)
        })
    }

    /// `Some((failing, usable))` when most keys just met provider faults.
    pub fn overloaded(&self) -> Result<Option<(usize, usize)>, PoolUnavailable> {
        self.with(|state, now, _| state.overloaded(now))
    }

    /// Applies a change another replica published (never republished).
    pub fn apply_remote(&self, change: &SharedChange) {
        self.tell(|state, now, wall| state.apply_remote(change, now, wall));
    }

    /// Takes the cluster's marks as the truth (see `PoolState::replace_marks`).
    pub fn replace_marks(&self, marks: &[(String, Mark)]) {
        self.tell(|state, now, wall| state.replace_marks(marks, now, wall));
    }

    /// Every key's marks in force, in shared form.
    pub fn active_marks(&self) -> Vec<SharedChange> {
        self.with(|state, now, wall| state.active_marks(now, wall))
            .unwrap_or_default()
    }

    /// Finished cooldowns waiting for a probe token.
    pub fn probes_due(&self) -> Vec<ProbeDue> {
        self.with(|state, now, _| state.probes_due(now))
            .unwrap_or_default()
    }

    pub fn probe_granted(&self, probe: &ProbeDue) {
        self.tell(|state, _, _| state.probe_granted(probe));
    }

    /// Another replica probes `probe`'s key; keep it out for `hold`.
    pub fn probe_elsewhere(&self, probe: &ProbeDue, hold: std::time::Duration) {
        self.tell(|state, now, _| state.probe_elsewhere(probe, now + hold));
    }

    /// This replica's own counters.
    pub fn local_counts(&self) -> Result<Counts, PoolUnavailable> {
        self.with(|state, _, _| state.local_counts())
    }

    /// The cluster's counters, which include this replica's `included`.
    pub fn set_cluster_counts(&self, totals: Counts, included: Counts) {
        self.tell(|state, _, _| state.set_cluster_counts(totals, included));
    }

    /// What changed since the last call, in saved form.
    pub fn take_changes(&self) -> Result<Changes, PoolUnavailable> {
        self.with(|state, now, wall| state.take_changes(now, wall))
    }
}

/// Counts one client request in the provider statistics. Created when the
/// request starts; if it is dropped without `finish` (the client hung up, a
/// handler returned early) the request counts as failed, so
/// `total = successful + failed` holds once requests are done.
pub struct RequestTracker {
    pool: KeyPoolHandle,
    rotations: u32,
    finished: bool,
}

impl RequestTracker {
    pub fn start(pool: &KeyPoolHandle) -> Self {
        pool.tell(|state, _, _| state.request_started());
        Self {
            pool: pool.clone(),
            rotations: 0,
            finished: false,
        }
    }

    pub fn rotated(&mut self) {
        self.rotations += 1;
    }

    pub fn finish(mut self, succeeded: bool) {
        self.send(succeeded);
    }

    fn send(&mut self, succeeded: bool) {
        if !self.finished {
            self.finished = true;
            let rotations = self.rotations;
            self.pool
                .tell(|state, _, _| state.request_finished(succeeded, rotations));
        }
    }
}

impl Drop for RequestTracker {
    fn drop(&mut self) {
        self.send(false);
    }
}

/// One pool per configured provider.
#[derive(Clone, Default)]
pub struct KeyPools {
    /// Shared, not copied: the state is cloned for every request.
    pools: Arc<[KeyPoolHandle]>,
}

impl KeyPools {
    pub fn new(pools: Vec<KeyPoolHandle>) -> Self {
        Self {
            pools: pools.into(),
        }
    }

    pub fn get(&self, provider: ProviderKind) -> Option<&KeyPoolHandle> {
        self.pools.iter().find(|p| p.provider == provider)
    }

    pub fn iter(&self) -> impl Iterator<Item = &KeyPoolHandle> {
        self.pools.iter()
    }
}
