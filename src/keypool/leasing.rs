//! Which key serves next: the pool's strategy over the keys that can serve,
//! found through the ready index (`ready`) so that a pick costs the same
//! with 5,000 keys as with 2. `scan` is the same choice made by looking at
//! every key: the fallback for a model the index keeps no lineup for, and
//! the oracle the index is tested against (`ready_tests`).

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::Selection;
use super::machine::PoolState;
use super::ready::{Ready, ReadyIndex};
use super::select::{Strategy, charge, eligible, pick};
use super::slot::KeySlot;
use crate::domain::{FailureNote, KeyId, KeyLease};

/// What a pick found, before any lease.
#[derive(Debug, PartialEq)]
pub(super) enum Choice {
    Take(usize),
    /// No key can serve the request's model now (`why_none` says why).
    NoneReady,
    /// Only keys the request has found unable to serve it are left.
    Spent,
}

impl PoolState {
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
        let tried = self.indexes_of(tried);
        let spent = self.indexes_of(spent);
        let cursor = self.cursor;
        let ready = self.ready_index(now, wall);
        let choice = match ready.ready(model) {
            Ready::Indexed(lineup) => {
                let mut tried_ready: Vec<usize> = tried
                    .iter()
                    .copied()
                    .filter(|&i| ready.holds(lineup, i))
                    .collect();
                tried_ready.sort_unstable();
                tried_ready.dedup();
                if lineup.is_empty() {
                    Choice::NoneReady
                } else {
                    let untried_left = lineup.len() > tried_ready.len();
                    let admit = |i| admitted(i, &tried, &spent, untried_left);
                    lineup
                        .choose(cursor, admit)
                        .map_or(Choice::Spent, Choice::Take)
                }
            }
            Ready::Scan => self.scan(now, wall, &tried, &spent, model),
        };
        match choice {
            Choice::Take(index) => self.lease_at(index, model, now, wall),
            Choice::NoneReady => self.why_none(model, now, wall),
            Choice::Spent => Selection::Spent,
        }
    }

    /// The choice made by looking at every key, in round-robin order from
    /// the cursor: the keys that can serve, the untried ones if any, less
    /// the spent ones, then the strategy.
    pub(super) fn scan(
        &self,
        now: Instant,
        wall: SystemTime,
        tried: &[usize],
        spent: &[usize],
        model: Option<&str>,
    ) -> Choice {
        match self.scan_candidates(now, wall, tried, spent, model) {
            Ok(candidates) => Choice::Take(pick(
                self.settings.strategy,
                &candidates,
                &self.slots,
                now,
                wall,
            )),
            Err(choice) => choice,
        }
    }

    /// The keys `scan` picks among (non-empty), or why there are none.
    pub(super) fn scan_candidates(
        &self,
        now: Instant,
        wall: SystemTime,
        tried: &[usize],
        spent: &[usize],
        model: Option<&str>,
    ) -> Result<Vec<usize>, Choice> {
        let count = self.slots.len();
        let strategy = self.settings.strategy;
        let order: Vec<usize> = (0..count)
            .map(|offset| (self.cursor + offset) % count)
            .filter(|&i| eligible(strategy, &self.slots[i], model, now, wall))
            .collect();
        if order.is_empty() {
            return Err(Choice::NoneReady);
        }
        let untried_left = order.iter().any(|i| !tried.contains(i));
        let candidates: Vec<usize> = order
            .into_iter()
            .filter(|&i| admitted(i, tried, spent, untried_left))
            .collect();
        if candidates.is_empty() {
            return Err(Choice::Spent);
        }
        Ok(candidates)
    }

    /// The ready index, built if a change to the key set dropped it, and
    /// brought up to `now`.
    pub(super) fn ready_index(&mut self, now: Instant, wall: SystemTime) -> &ReadyIndex {
        let strategy = self.settings.strategy;
        let slots = &self.slots;
        let ready = self
            .ready
            .get_or_insert_with(|| ReadyIndex::build(strategy, slots, now, wall));
        for index in self.changed.drain(..) {
            ready.refresh(slots, index, now, wall);
        }
        ready.catch_up(slots, now, wall);
        ready
    }

    fn indexes_of(&self, keys: &[KeyId]) -> Vec<usize> {
        keys.iter()
            .filter_map(|key| self.positions.get(key).copied())
            .collect()
    }

    /// Leases the key at `index` (picked by a strategy, from the whole pool
    /// or from a cache scope): moves the round-robin cursor past it and
    /// charges its `weighted` pass, then `hand_out`.
    pub(super) fn lease_at(
        &mut self,
        index: usize,
        model: Option<&str>,
        now: Instant,
        wall: SystemTime,
    ) -> Selection {
        self.cursor = (index + 1) % self.slots.len();
        charge(
            self.settings.strategy,
            &mut self.slots[index],
            &mut self.pass_clock,
        );
        Selection::Leased(self.hand_out(index, model, now, wall))
    }

    /// Gives out the key at `index` for one attempt (its request counted,
    /// its half-open probe taken) and tells the ready index it changed.
    pub(super) fn hand_out(
        &mut self,
        index: usize,
        model: Option<&str>,
        now: Instant,
        wall: SystemTime,
    ) -> KeyLease {
        let scope = self.scopes.name_of(index);
        let count_recent = self.settings.strategy == Strategy::LeastUsed;
        let slot = &mut self.slots[index];
        slot.lease(model, now, wall, count_recent);
        let lease = KeyLease {
            id: slot.entry.id.clone(),
            secret: slot.entry.secret.clone(),
            scope,
            token_limit: slot.limits.and_then(|l| l.token_limit()),
        };
        self.mark_changed(index);
        lease
    }

    /// Why no key can serve `model`. It looks at every key, which is
    /// fine: this is the rare path where the whole pool is unavailable,
    /// and the answer is an error, not a lease.
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
                let cooling = slot.resting_until(model, now).map(|until| until - now);
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
}

/// Whether a pick may take slot `i`: never a spent key, and a tried one
/// only when every key that can serve has been tried.
fn admitted(i: usize, tried: &[usize], spent: &[usize], untried_left: bool) -> bool {
    !(spent.contains(&i) || untried_left && tried.contains(&i))
}
