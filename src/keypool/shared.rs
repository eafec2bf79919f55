//! What a pool shares with the other replicas of a cluster, and how it
//! applies what they share. Pure, like the machine: deadlines travel as
//! Unix milliseconds (an `Instant` means nothing in another process) and
//! every function takes the time.
//!
//! A pool made `shared` records each change to a key's marks (cooldowns,
//! invalid, ejection, no access, rate-limit headroom, a pool reset) in an
//! outbox, which its handle drains into the publisher. Marks received from
//! other replicas are applied by `apply_remote`, which never touches the
//! outbox: a replica never republishes what it heard, so there is no echo.
//!
//! How each mark merges is `marks`' business.
//!
//! Half-open probes: in a shared pool a cooldown that has run out does not
//! let a request through by itself; it waits for a probe token (`ProbeGate`),
//! which the cluster's probe task takes in Redis off the request path. The
//! replica that gets it probes; the others keep the key out until the
//! probe's result arrives or the token expires.

use std::time::SystemTime;

use tokio::time::Instant;

use super::machine::PoolState;
use super::marks::{apply_mark, cooldown_mark, ejection_mark, no_access_mark};
use super::slot::KeySlot;
use super::snapshot::{unix_ms, until_wall};
use crate::domain::{KeyId, Outcome};

pub use super::marks::{Mark, SharedChange, SharedWindow};

/// Whether a finished cooldown may be probed from here. Both carry the
/// cooldown's end as it was shared, which names the token: recomputing it
/// from this process's clocks could differ by a millisecond between
/// replicas, and then two would probe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum ProbeGate {
    /// Waiting for this replica's try at the probe token.
    Await { until_ms: u64 },
    /// Another replica holds the token until `until`.
    Elsewhere { until: Instant, until_ms: u64 },
}

/// What a probe token is for.
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeScope {
    /// A cooldown on one model (`Some`) or the whole key.
    Cooldown(Option<String>),
    /// An ejection.
    Ejection,
}

impl ProbeScope {
    /// The token name's part for this scope.
    pub fn slot(&self) -> String {
        match self {
            ProbeScope::Cooldown(model) => {
                format!("cooldown:{}", model.as_deref().unwrap_or("*"))
            }
            ProbeScope::Ejection => "ejected".into(),
        }
    }
}

/// A finished cooldown or ejection waiting for its probe token.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeDue {
    pub key: KeyId,
    pub scope: ProbeScope,
    /// The rest's end, which names the token: every replica that knows the
    /// same rest contends for the same token.
    pub until_ms: u64,
}

impl PoolState {
    /// Makes this pool part of a cluster: changes go to the outbox, and
    /// finished cooldowns wait for a probe token.
    pub fn share(&mut self, now: Instant, wall: SystemTime) {
        self.outbox = Some(Vec::new());
        for slot in &mut self.slots {
            for cooldown in &mut slot.cooldowns {
                let until_ms = unix_ms(until_wall(cooldown.until, now, wall));
                cooldown.gate = Some(ProbeGate::Await { until_ms });
            }
            if let Some(ejection) = &mut slot.ejection {
                let until_ms = unix_ms(until_wall(ejection.until, now, wall));
                ejection.gate = Some(ProbeGate::Await { until_ms });
            }
        }
        self.key_set_changed();
    }

    pub fn is_shared(&self) -> bool {
        self.outbox.is_some()
    }

    /// The changes made since the last call.
    pub fn take_shared(&mut self) -> Vec<SharedChange> {
        self.outbox.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Puts what `outcome` changed about the key at `index` in the outbox.
    #[expect(clippy::too_many_arguments, reason = "one call site, all plain values")]
    pub(super) fn share_outcome(
        &mut self,
        index: usize,
        outcome: &Outcome,
        model: Option<&str>,
        scope: Option<&str>,
        recovering: bool,
        ejections: u32,
        now: Instant,
        wall: SystemTime,
    ) {
        let slot = &mut self.slots[index];
        let mark = match outcome {
            Outcome::Success { .. } if recovering => Some(Mark::Recovered {
                model: model.map(String::from),
            }),
            Outcome::RateLimited { .. } => shared_cooldown(slot, scope, now, wall),
            // A spent quota rests the whole key.
            Outcome::QuotaSpent { .. } => shared_cooldown(slot, None, now, wall),
            Outcome::Rejected(note) => Some(Mark::Invalid {
                reason: note.message.clone(),
            }),
            Outcome::NoAccess(_) => slot
                .no_access
                .iter()
                .find(|m| m.model.as_deref() == model)
                .map(|m| no_access_mark(m, now, wall)),
            Outcome::Failed(_) if slot.ejections != ejections => {
                slot.ejection.as_mut().map(|ejection| {
                    let mark = ejection_mark(ejection, now, wall);
                    if let Mark::Ejected { until_ms, .. } = mark {
                        ejection.gate = Some(ProbeGate::Await { until_ms });
                    }
                    mark
                })
            }
            _ => None,
        };
        if let Some(mark) = mark {
            let key = slot.entry.id.clone();
            self.emit(&key, mark);
        }
    }

    /// Puts the whole-key rest of the key at `index` in the outbox: a rest
    /// decided from another key's answer (a Google project's spent quota).
    pub(super) fn share_rest(&mut self, index: usize, now: Instant, wall: SystemTime) {
        if let Some(mark) = shared_cooldown(&mut self.slots[index], None, now, wall) {
            let key = self.slots[index].entry.id.clone();
            self.emit(&key, mark);
        }
    }

    pub(super) fn emit(&mut self, key: &KeyId, mark: Mark) {
        if let Some(outbox) = &mut self.outbox {
            outbox.push(SharedChange::Key {
                key: key.to_string(),
                mark,
            });
        }
    }

    pub(super) fn emit_reset(&mut self) {
        if let Some(outbox) = &mut self.outbox {
            outbox.push(SharedChange::Reset);
        }
    }

    /// Applies a change another replica published.
    pub fn apply_remote(&mut self, change: &SharedChange, now: Instant, wall: SystemTime) {
        let shared = self.is_shared();
        match change {
            SharedChange::Reset => {
                self.slots.iter_mut().for_each(KeySlot::reset);
                self.forget_failures();
                self.key_set_changed();
            }
            SharedChange::Key { key, mark } => {
                if let Some(slot) = self.slot_mut(key) {
                    apply_mark(slot, mark, shared, now, wall);
                    self.mark_key_changed(key);
                }
            }
        }
    }

    /// Takes Redis's marks as the truth after a reconnection (see
    /// `cluster::sync`): active marks it no longer holds were cleared while
    /// this replica was away, and go; finished cooldowns stay, since they
    /// only remember the ladder's rung.
    pub fn replace_marks(&mut self, marks: &[(String, Mark)], now: Instant, wall: SystemTime) {
        let shared = self.is_shared();
        for slot in &mut self.slots {
            slot.invalid = None;
            slot.cooldowns.retain(|c| !c.is_active(now));
            slot.ejection = slot.ejection.take().filter(|e| !e.is_active(now));
            slot.no_access.clear();
        }
        for (key, mark) in marks {
            if let Some(slot) = self.slot_mut(key) {
                apply_mark(slot, mark, shared, now, wall);
            }
        }
        self.key_set_changed();
    }

    /// Every key's marks in force, to publish when Redis lost them.
    pub fn active_marks(&self, now: Instant, wall: SystemTime) -> Vec<SharedChange> {
        let mut changes = Vec::new();
        for slot in &self.slots {
            let mut push = |mark| {
                changes.push(SharedChange::Key {
                    key: slot.entry.id.to_string(),
                    mark,
                })
            };
            if let Some(reason) = &slot.invalid {
                push(Mark::Invalid {
                    reason: reason.clone(),
                });
            }
            for cooldown in slot.cooldowns.iter().filter(|c| c.is_active(now)) {
                push(cooldown_mark(cooldown, now, wall));
            }
            if let Some(ejection) = slot.ejection.as_ref().filter(|e| e.is_active(now)) {
                push(ejection_mark(ejection, now, wall));
            }
            for mark in slot.no_access.iter().filter(|m| m.until > now) {
                push(no_access_mark(mark, now, wall));
            }
        }
        changes
    }

    /// Finished cooldowns of usable keys waiting for a probe token.
    pub fn probes_due(&self, now: Instant) -> Vec<ProbeDue> {
        let waiting = |gate: Option<ProbeGate>| match gate {
            Some(ProbeGate::Await { until_ms }) => Some(until_ms),
            Some(ProbeGate::Elsewhere { until, until_ms }) if until <= now => Some(until_ms),
            _ => None,
        };
        let mut due = Vec::new();
        for slot in self.slots.iter().filter(|s| s.is_usable()) {
            for cooldown in slot.cooldowns.iter().filter(|c| !c.is_active(now)) {
                if let Some(until_ms) = waiting(cooldown.gate) {
                    due.push(ProbeDue {
                        key: slot.entry.id.clone(),
                        scope: ProbeScope::Cooldown(cooldown.model.clone()),
                        until_ms,
                    });
                }
            }
            if let Some(ejection) = slot.ejection.as_ref().filter(|e| !e.is_active(now))
                && let Some(until_ms) = waiting(ejection.gate)
            {
                due.push(ProbeDue {
                    key: slot.entry.id.clone(),
                    scope: ProbeScope::Ejection,
                    until_ms,
                });
            }
        }
        due
    }

    /// The token for `probe` is this replica's (or Redis cannot be asked):
    /// the next request may probe.
    pub fn probe_granted(&mut self, probe: &ProbeDue) {
        if let Some(gate) = self.probe_gate(probe) {
            *gate = None;
        }
        self.mark_key_changed(probe.key.as_str());
    }

    /// Another replica holds the token for `probe` until `until`.
    pub fn probe_elsewhere(&mut self, probe: &ProbeDue, until: Instant) {
        let until_ms = probe.until_ms;
        if let Some(gate) = self.probe_gate(probe) {
            *gate = Some(ProbeGate::Elsewhere { until, until_ms });
        }
        self.mark_key_changed(probe.key.as_str());
    }

    fn probe_gate(&mut self, probe: &ProbeDue) -> Option<&mut Option<ProbeGate>> {
        let slot = self.slot_mut(probe.key.as_str())?;
        match &probe.scope {
            ProbeScope::Cooldown(model) => slot
                .cooldowns
                .iter_mut()
                .find(|c| &c.model == model)
                .map(|c| &mut c.gate),
            ProbeScope::Ejection => slot.ejection.as_mut().map(|e| &mut e.gate),
        }
    }
}

#[cfg(test)]
#[path = "shared_tests.rs"]
mod tests;

/// The mark of the key's cooldown for `scope` (a model, or the whole key),
/// its probe now awaiting the cluster's token.
fn shared_cooldown(
    slot: &mut KeySlot,
    scope: Option<&str>,
    now: Instant,
    wall: SystemTime,
) -> Option<Mark> {
    slot.cooldowns
        .iter_mut()
        .find(|c| c.model.as_deref() == scope)
        .map(|cooldown| {
            let mark = cooldown_mark(cooldown, now, wall);
            if let Mark::Cooldown { until_ms, .. } = mark {
                cooldown.gate = Some(ProbeGate::Await { until_ms });
            }
            mark
        })
}
