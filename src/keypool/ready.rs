//! The keys ready to serve, kept up to date as they change so that a pick
//! never looks at the whole pool: a few B-tree steps, with 5,000 keys as
//! with 2.
//!
//! One `Lineup` holds the keys that can serve a request for a model none
//! of them has a mark for (and a request naming no model). A model that
//! some key has a mark for (a per-model cooldown, no access) gets a lineup
//! of its own, so per-model rests cost no scan either; upstreams rate-limit
//! a handful of models, and past `MAX_MODEL_LINEUPS` requests for other
//! marked models fall back to the simple scan (exact, only slower).
//!
//! Invariant: a slot is filed in a lineup exactly when
//! `select::eligible` holds for it and that lineup's model, at its rank.
//! The machine calls `refresh` after any change to a slot, and time moves
//! keys on its own (a cooldown ends, a rate-limit window resets, a lease
//! leaves `least_used`'s minute), so each slot's next such moment waits in
//! a min-heap, and `catch_up` refreshes the slots whose moment has come.
//! A rate-limit window's reset is a wall-clock time, filed as a monotonic
//! deadline (`now` plus the wait): should the wall clock jump, a key comes
//! back at that deadline at the latest, and a refresh that finds it early
//! files it again.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::SystemTime;

use tokio::time::Instant;

use super::lineup::Lineup;
use super::select::{Rank, Strategy, eligible, rank};
use super::slot::KeySlot;

/// Models with a lineup of their own (see the module comment).
const MAX_MODEL_LINEUPS: usize = 64;

pub(super) struct ReadyIndex {
    strategy: Strategy,
    /// Keys ready for a model no key has a mark for.
    general: Lineup,
    /// Keys ready for each model some key has a mark for.
    models: HashMap<String, Lineup>,
    /// A marked model found no room in `models`: its requests scan.
    overflowed: bool,
    /// Each slot's rank, as filed.
    ranks: Vec<Rank>,
    /// When each slot must be looked at again, earliest first; entries
    /// superseded by an earlier one are skipped when they come up.
    wakes: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Each slot's pending entry in `wakes`.
    scheduled: Vec<Option<Instant>>,
}

/// Where a request for a model finds its keys.
pub(super) enum Ready<'a> {
    Indexed(&'a Lineup),
    /// Only a scan knows (see `MAX_MODEL_LINEUPS`).
    Scan,
}

impl ReadyIndex {
    /// Files every slot; O(n) for each marked model, on changes to the key
    /// set only.
    pub fn build(strategy: Strategy, slots: &[KeySlot], now: Instant, wall: SystemTime) -> Self {
        let mut index = Self {
            strategy,
            general: Lineup::new(strategy),
            models: HashMap::new(),
            overflowed: false,
            ranks: slots.iter().map(|s| rank(strategy, s, now, wall)).collect(),
            wakes: BinaryHeap::new(),
            scheduled: vec![None; slots.len()],
        };
        for (i, slot) in slots.iter().enumerate() {
            if eligible(strategy, slot, None, now, wall) {
                index.general.insert(index.ranks[i], i);
            }
            index.schedule(i, next_change(strategy, slot, now, wall));
        }
        for slot in slots {
            index.add_models(slot, slots, now, wall);
        }
        index
    }

    /// Where a request for `model` finds its keys (after `catch_up`).
    pub fn ready(&self, model: Option<&str>) -> Ready<'_> {
        match model.and_then(|m| self.models.get(m)) {
            Some(lineup) => Ready::Indexed(lineup),
            None if self.overflowed && model.is_some() => Ready::Scan,
            None => Ready::Indexed(&self.general),
        }
    }

    /// Refreshes the slots whose next change has come by `now`.
    pub fn catch_up(&mut self, slots: &[KeySlot], now: Instant, wall: SystemTime) {
        while let Some(&Reverse((at, i))) = self.wakes.peek() {
            if at > now {
                break;
            }
            self.wakes.pop();
            if self.scheduled.get(i) == Some(&Some(at)) {
                self.scheduled[i] = None;
                self.refresh(slots, i, now, wall);
            }
        }
    }

    /// Files slot `i` again after a change to it.
    pub fn refresh(&mut self, slots: &[KeySlot], i: usize, now: Instant, wall: SystemTime) {
        let slot = &slots[i];
        self.add_models(slot, slots, now, wall);
        let old = self.ranks[i];
        let new = rank(self.strategy, slot, now, wall);
        self.ranks[i] = new;
        let strategy = self.strategy;
        let lineups = std::iter::once((None, &mut self.general))
            .chain(self.models.iter_mut().map(|(m, l)| (Some(m.as_str()), l)));
        for (model, lineup) in lineups {
            lineup.remove(old, i);
            if eligible(strategy, slot, model, now, wall) {
                lineup.insert(new, i);
            }
        }
        self.schedule(i, next_change(strategy, slot, now, wall));
    }

    /// Whether slot `i` is filed in `lineup`.
    pub fn holds(&self, lineup: &Lineup, i: usize) -> bool {
        lineup.contains(self.ranks[i], i)
    }

    /// Gives each model `slot` has a mark for a lineup, if it has none.
    fn add_models(&mut self, slot: &KeySlot, slots: &[KeySlot], now: Instant, wall: SystemTime) {
        let marked = slot
            .cooldowns
            .iter()
            .filter_map(|c| c.model.as_deref())
            .chain(slot.no_access.iter().filter_map(|m| m.model.as_deref()));
        for model in marked {
            if self.models.contains_key(model) {
                continue;
            }
            if self.models.len() >= MAX_MODEL_LINEUPS {
                self.overflowed = true;
                continue;
            }
            let mut lineup = Lineup::new(self.strategy);
            for (i, other) in slots.iter().enumerate() {
                if eligible(self.strategy, other, Some(model), now, wall) {
                    lineup.insert(self.ranks[i], i);
                }
            }
            self.models.insert(model.to_string(), lineup);
        }
    }

    fn schedule(&mut self, i: usize, at: Option<Instant>) {
        let Some(at) = at else {
            return;
        };
        // An earlier pending wake stays: it refreshes the slot, which
        // schedules the later one again.
        if self.scheduled[i].is_some_and(|pending| pending <= at) {
            return;
        }
        self.scheduled[i] = Some(at);
        self.wakes.push(Reverse((at, i)));
        if self.wakes.len() > 4 * self.scheduled.len() + 1024 {
            self.compact();
        }
    }

    /// Drops superseded wakes, which a key cooled down again and again
    /// could otherwise pile up.
    fn compact(&mut self) {
        self.wakes = self
            .scheduled
            .iter()
            .enumerate()
            .filter_map(|(i, at)| at.map(|at| Reverse((at, i))))
            .collect();
    }
}

/// The next moment `slot`'s readiness or rank changes by time alone: a
/// cooldown, ejection or no-access mark ending, a rate-limit window
/// resetting (`headroom`), a lease leaving the last minute (`least_used`).
fn next_change(
    strategy: Strategy,
    slot: &KeySlot,
    now: Instant,
    wall: SystemTime,
) -> Option<Instant> {
    let marks = slot
        .cooldowns
        .iter()
        .map(|c| c.until)
        .chain(slot.ejection.as_ref().map(|e| e.until))
        .chain(slot.no_access.iter().map(|m| m.until));
    let windows = slot
        .limits
        .filter(|_| strategy == Strategy::Headroom)
        .and_then(|l| l.next_reset(wall))
        .map(|wait| now + wait);
    let recent = (strategy == Strategy::LeastUsed)
        .then(|| slot.recent_expiry(now))
        .flatten();
    marks
        .chain(windows)
        .chain(recent)
        .filter(|&at| at > now)
        .min()
}
