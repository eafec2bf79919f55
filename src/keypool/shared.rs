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
//! Merging is order-free where it can be: a cooldown or ejection keeps the
//! later deadline and the higher rung, so two replicas that bench the same
//! key at once converge on the same mark whatever order the messages come.
//!
//! Half-open probes: in a shared pool a cooldown that has run out does not
//! let a request through by itself; it waits for a probe token (`ProbeGate`),
//! which the cluster's probe task takes in Redis off the request path. The
//! replica that gets it probes; the others keep the key out until the
//! probe's result arrives or the token expires.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::cooldown::Cooldown;
use super::ejection::Ejection;
use super::machine::PoolState;
use super::slot::{KeySlot, NoAccessMark};
use super::snapshot::{unix_ms, until_instant, until_wall};
use crate::domain::{FailureNote, KeyId, RateLimits, Window};

/// One change another replica must apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum SharedChange {
    Key {
        key: String,
        mark: Mark,
    },
    /// An admin reset the pool: failures, cooldowns and marks cleared.
    Reset,
}

/// A mark on one key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mark", rename_all = "snake_case")]
pub enum Mark {
    /// Rate-limited: rests until `until_ms` (for `model`, or the whole key).
    Cooldown {
        model: Option<String>,
        until_ms: u64,
        level: u8,
    },
    /// A request for `model` succeeded: finished cooldowns that applied to
    /// it and any ejection are over (the probe passed).
    Recovered {
        model: Option<String>,
    },
    Invalid {
        reason: String,
    },
    /// A check passed: no longer invalid.
    Valid,
    Ejected {
        until_ms: u64,
        level: u8,
        reason: String,
    },
    NoAccess {
        model: Option<String>,
        until_ms: u64,
        status: Option<u16>,
        error_type: String,
        message: String,
    },
    /// The latest rate-limit windows an answer reported.
    Limits {
        windows: Vec<SharedWindow>,
    },
}

/// One rate-limit window in wall-clock form.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SharedWindow {
    /// 0 requests, 1 tokens, 2 input tokens, 3 output tokens.
    pub kind: u8,
    pub limit: u64,
    pub remaining: u64,
    pub reset_ms: Option<u64>,
}

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
    }

    pub fn is_shared(&self) -> bool {
        self.outbox.is_some()
    }

    /// The changes made since the last call.
    pub fn take_shared(&mut self) -> Vec<SharedChange> {
        self.outbox.as_mut().map(std::mem::take).unwrap_or_default()
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
            }
            SharedChange::Key { key, mark } => {
                if let Some(slot) = self.slots.iter_mut().find(|s| s.entry.id.as_str() == key) {
                    apply_mark(slot, mark, shared, now, wall);
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
            if let Some(slot) = self.slots.iter_mut().find(|s| s.entry.id.as_str() == key) {
                apply_mark(slot, mark, shared, now, wall);
            }
        }
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
    }

    /// Another replica holds the token for `probe` until `until`.
    pub fn probe_elsewhere(&mut self, probe: &ProbeDue, until: Instant) {
        let until_ms = probe.until_ms;
        if let Some(gate) = self.probe_gate(probe) {
            *gate = Some(ProbeGate::Elsewhere { until, until_ms });
        }
    }

    fn probe_gate(&mut self, probe: &ProbeDue) -> Option<&mut Option<ProbeGate>> {
        let slot = self.slots.iter_mut().find(|s| s.entry.id == probe.key)?;
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

fn apply_mark(slot: &mut KeySlot, mark: &Mark, shared: bool, now: Instant, wall: SystemTime) {
    match mark {
        Mark::Cooldown {
            model,
            until_ms,
            level,
        } => {
            let until = until_instant(*until_ms, now, wall);
            let gate = shared.then_some(ProbeGate::Await {
                until_ms: *until_ms,
            });
            match slot.cooldowns.iter_mut().find(|c| &c.model == model) {
                Some(cooldown) => {
                    // The same deadline heard twice may differ by the
                    // clock reads' jitter: only a later one is news.
                    if until > cooldown.until + Duration::from_millis(1) {
                        cooldown.until = until;
                        cooldown.probing = false;
                        cooldown.gate = gate;
                    }
                    cooldown.level = cooldown.level.max(*level);
                }
                None => slot.cooldowns.push(Cooldown {
                    model: model.clone(),
                    until,
                    level: *level,
                    probing: false,
                    gate,
                }),
            }
        }
        Mark::Recovered { model } => {
            let model = model.as_deref();
            slot.cooldowns
                .retain(|c| !c.applies_to(model) || c.is_active(now));
            slot.ejection = None;
            slot.consecutive_faults = 0;
        }
        Mark::Invalid { reason } => slot.invalid = Some(reason.clone()),
        Mark::Valid => slot.invalid = None,
        Mark::Ejected {
            until_ms,
            level,
            reason,
        } => {
            let until = until_instant(*until_ms, now, wall);
            if slot.ejection.as_ref().is_none_or(|e| e.until < until) {
                slot.ejection = Some(Ejection {
                    until,
                    level: *level,
                    reason: reason.clone(),
                    probing: false,
                    gate: shared.then_some(ProbeGate::Await {
                        until_ms: *until_ms,
                    }),
                });
            }
        }
        Mark::NoAccess {
            model,
            until_ms,
            status,
            error_type,
            message,
        } => {
            slot.no_access
                .retain(|m| m.until > now && &m.model != model);
            slot.no_access.push(NoAccessMark {
                model: model.clone(),
                until: until_instant(*until_ms, now, wall),
                note: FailureNote {
                    status: *status,
                    error_type: error_type.clone(),
                    message: message.clone(),
                },
            });
        }
        Mark::Limits { windows } => slot.limits = Some(limits_from(windows)),
    }
}

pub(super) fn cooldown_mark(cooldown: &Cooldown, now: Instant, wall: SystemTime) -> Mark {
    Mark::Cooldown {
        model: cooldown.model.clone(),
        until_ms: unix_ms(until_wall(cooldown.until, now, wall)),
        level: cooldown.level,
    }
}

pub(super) fn ejection_mark(ejection: &Ejection, now: Instant, wall: SystemTime) -> Mark {
    Mark::Ejected {
        until_ms: unix_ms(until_wall(ejection.until, now, wall)),
        level: ejection.level,
        reason: ejection.reason.clone(),
    }
}

pub(super) fn no_access_mark(mark: &NoAccessMark, now: Instant, wall: SystemTime) -> Mark {
    Mark::NoAccess {
        model: mark.model.clone(),
        until_ms: unix_ms(until_wall(mark.until, now, wall)),
        status: mark.note.status,
        error_type: mark.note.error_type.clone(),
        message: mark.note.message.clone(),
    }
}

pub(super) fn limits_mark(limits: &RateLimits) -> Mark {
    let windows = [
        limits.requests,
        limits.tokens,
        limits.input_tokens,
        limits.output_tokens,
    ]
    .into_iter()
    .enumerate()
    .filter_map(|(kind, window)| {
        window.map(|w| SharedWindow {
            kind: kind as u8,
            limit: w.limit,
            remaining: w.remaining,
            reset_ms: w.reset.map(unix_ms),
        })
    })
    .collect();
    Mark::Limits { windows }
}

fn limits_from(windows: &[SharedWindow]) -> RateLimits {
    let mut limits = RateLimits::default();
    for shared in windows {
        let window = Some(Window {
            limit: shared.limit,
            remaining: shared.remaining,
            reset: shared
                .reset_ms
                .map(|ms| std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms)),
        });
        match shared.kind {
            0 => limits.requests = window,
            1 => limits.tokens = window,
            2 => limits.input_tokens = window,
            3 => limits.output_tokens = window,
            _ => {}
        }
    }
    limits
}

#[cfg(test)]
#[path = "shared_tests.rs"]
mod tests;
