//! The marks replicas share, in their wire form, and what applying one
//! does to a key. Deadlines travel as Unix milliseconds: an `Instant`
//! means nothing in another process. Merging is order-free where it can
//! be: a cooldown or ejection keeps the later deadline and the higher
//! rung, so two replicas that bench the same key at once converge on the
//! same mark whatever order the messages come in.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::cooldown::Cooldown;
use super::ejection::Ejection;
use super::shared::ProbeGate;
use super::slot::{KeySlot, NoAccessMark};
use super::snapshot::{unix_ms, until_instant, until_wall};
use crate::domain::{FailureNote, RateLimits, Window};

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

pub(super) fn apply_mark(
    slot: &mut KeySlot,
    mark: &Mark,
    shared: bool,
    now: Instant,
    wall: SystemTime,
) {
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
