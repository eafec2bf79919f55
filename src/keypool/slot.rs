//! One key in a pool and what each outcome does to it. Health is derived,
//! never stored twice: `disabled` comes from the admin switch, `invalid`
//! from a rejection, `cooling_down` from an active cooldown.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::cooldown::{Cooldown, CooldownPolicy};
use super::ejection::{Ejection, OutlierPolicy};
use super::latency::LatencyWindow;
use super::status::FailureRecord;
use crate::domain::{FailureNote, KeyEntry, Outcome, RateLimits};

/// How many failures each key remembers.
pub const FAILURE_HISTORY_LEN: usize = 20;
/// Leases remembered for `least_used`'s "fewest recent".
const RECENT_WINDOW: Duration = Duration::from_secs(60);
const RECENT_MAX: usize = 512;

pub(super) struct KeySlot {
    pub entry: KeyEntry,
    /// Why the upstream rejected the key; out of rotation until reset.
    pub invalid: Option<String>,
    pub cooldowns: Vec<Cooldown>,
    pub in_flight: u32,
    pub recent: VecDeque<Instant>,
    pub latency: LatencyWindow,
    pub limits: Option<RateLimits>,
    /// Stride scheduling's pass under `weighted`: the lowest goes next.
    pub pass: u128,
    /// When the key last met a provider or network fault.
    pub last_fault: Option<Instant>,
    pub requests: u64,
    pub successes: u64,
    pub failures: u64,
    pub consecutive_failures: u64,
    pub last_used_at: Option<SystemTime>,
    pub last_error: Option<String>,
    pub history: VecDeque<FailureRecord>,
    /// Provider faults (5xx, 529, timeouts, network) in a row; any
    /// success resets it.
    pub consecutive_faults: u32,
    /// Out of rotation as an outlier, if it is (see `ejection`).
    pub ejection: Option<Ejection>,
    /// Times this key was ejected, in all.
    pub ejections: u32,
    /// Models this key was found to have no access to (its own check
    /// passed), until when, and what the upstream said.
    pub no_access: Vec<NoAccessMark>,
    /// Changed since the last save.
    pub dirty: bool,
}

#[derive(Debug, Clone)]
pub struct NoAccessMark {
    /// `None`: every model (a feature the key lacks).
    pub model: Option<String>,
    pub until: Instant,
    pub note: FailureNote,
}

impl NoAccessMark {
    fn applies_to(&self, model: Option<&str>, now: Instant) -> bool {
        self.until > now && (self.model.is_none() || self.model.as_deref() == model)
    }
}

impl KeySlot {
    pub fn new(entry: KeyEntry) -> Self {
        Self {
            entry,
            invalid: None,
            cooldowns: Vec::new(),
            in_flight: 0,
            recent: VecDeque::new(),
            latency: LatencyWindow::default(),
            limits: None,
            pass: 0,
            last_fault: None,
            requests: 0,
            successes: 0,
            failures: 0,
            consecutive_failures: 0,
            last_used_at: None,
            last_error: None,
            // Grown on the first failure: most keys of a large pool never
            // fail, and 20 empty records would cost each of them 2 KB.
            history: VecDeque::new(),
            no_access: Vec::new(),
            consecutive_faults: 0,
            ejection: None,
            ejections: 0,
            dirty: false,
        }
    }

    /// Enabled and not rejected: it may serve once any cooldown ends.
    pub fn is_usable(&self) -> bool {
        self.entry.enabled && self.invalid.is_none()
    }

    /// When the latest active cooldown that applies to `model` ends.
    pub fn blocked_until(&self, model: Option<&str>, now: Instant) -> Option<Instant> {
        self.cooldowns
            .iter()
            .filter(|c| c.applies_to(model) && c.is_active(now))
            .map(|c| c.until)
            .max()
    }

    /// When the key is back from its latest cooldown for `model` or its
    /// ejection, whichever ends later; `None` if it is resting from neither.
    pub fn resting_until(&self, model: Option<&str>, now: Instant) -> Option<Instant> {
        let ejected = self
            .ejection
            .as_ref()
            .filter(|e| e.is_active(now))
            .map(|e| e.until);
        self.blocked_until(model, now).max(ejected)
    }

    /// A half-open cooldown already has its one probe out (here, or at
    /// another replica of a cluster).
    fn probe_out(&self, model: Option<&str>, now: Instant) -> bool {
        self.cooldowns
            .iter()
            .any(|c| c.applies_to(model) && !c.is_active(now) && (c.probing || c.awaits_token(now)))
    }

    pub fn can_serve(&self, model: Option<&str>, now: Instant) -> bool {
        self.is_usable()
            && !self.ejection.as_ref().is_some_and(|e| e.blocks(now))
            && self.blocked_until(model, now).is_none()
            && !self.probe_out(model, now)
            && self.lacks_access(model, now).is_none()
    }

    /// What the upstream said when this key turned out to have no access
    /// to `model`, while that holds.
    pub fn lacks_access(&self, model: Option<&str>, now: Instant) -> Option<&FailureNote> {
        self.no_access
            .iter()
            .find(|mark| mark.applies_to(model, now))
            .map(|mark| &mark.note)
    }

    pub fn any_active_cooldown(&self, now: Instant) -> Option<Instant> {
        self.cooldowns
            .iter()
            .filter(|c| c.is_active(now))
            .map(|c| c.until)
            .max()
    }

    /// Leases in the last minute. Reads without pruning, so that ranking a
    /// key changes nothing; `lease` prunes.
    pub fn recent_count(&self, now: Instant) -> usize {
        self.recent.len() - self.expired_recent(now)
    }

    /// When the oldest lease still counted by `recent_count` stops counting.
    pub fn recent_expiry(&self, now: Instant) -> Option<Instant> {
        self.recent
            .get(self.expired_recent(now))
            .map(|t| *t + RECENT_WINDOW + Duration::from_nanos(1))
    }

    fn expired_recent(&self, now: Instant) -> usize {
        self.recent
            .partition_point(|t| now.duration_since(*t) > RECENT_WINDOW)
    }

    /// Lends the key to one attempt. `count_recent`: remember the lease for
    /// `recent_count` (only `least_used` reads it; other strategies save
    /// the memory, up to 8 KB a busy key).
    pub fn lease(
        &mut self,
        model: Option<&str>,
        now: Instant,
        wall: SystemTime,
        count_recent: bool,
    ) {
        self.requests += 1;
        self.in_flight += 1;
        self.last_used_at = Some(wall);
        if count_recent {
            let expired = self.expired_recent(now);
            self.recent.drain(..expired);
            if self.recent.len() == RECENT_MAX {
                self.recent.pop_front();
            }
            self.recent.push_back(now);
        }
        for cooldown in &mut self.cooldowns {
            if cooldown.applies_to(model) && !cooldown.is_active(now) {
                cooldown.probing = true;
            }
        }
        if let Some(ejection) = &mut self.ejection {
            ejection.probing = true;
        }
        self.dirty = true;
    }

    /// A success for `model` now would end something: a finished cooldown
    /// that applies to it (the probe passed) or an ejection.
    pub fn recovering(&self, model: Option<&str>, now: Instant) -> bool {
        self.ejection.is_some()
            || self
                .cooldowns
                .iter()
                .any(|c| c.applies_to(model) && !c.is_active(now))
    }

    /// Whether the key is ejected now (its rest not over).
    pub fn is_ejected(&self, now: Instant) -> bool {
        self.ejection.as_ref().is_some_and(|e| e.is_active(now))
    }

    /// Takes the key out of rotation for `policy`'s time at its level.
    pub fn eject(&mut self, policy: &OutlierPolicy, reason: String, now: Instant) {
        let level = self
            .ejection
            .as_ref()
            .map_or(0, |e| e.level.saturating_add(1));
        self.ejection = Some(Ejection {
            until: now + policy.length(level),
            level,
            reason,
            probing: false,
            gate: None,
        });
        self.ejections += 1;
        self.consecutive_faults = 0;
        self.dirty = true;
    }

    /// A fault on the half-open probe of an ejected key: the probe has
    /// failed, so it goes straight back out.
    pub fn failed_its_probe(&self) -> bool {
        self.ejection.as_ref().is_some_and(|e| e.probing)
    }

    /// Applies one attempt's outcome. `scope` is the model a rate limit
    /// applies to (`None`: the whole key).
    pub fn record(
        &mut self,
        outcome: &Outcome,
        model: Option<&str>,
        scope: Option<&str>,
        policy: &CooldownPolicy,
        now: Instant,
        wall: SystemTime,
    ) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.cooldowns
            .retain(|c| c.is_active(now) || now.duration_since(c.until) < policy.memory());
        match outcome {
            Outcome::Success { latency } => {
                self.successes += 1;
                self.consecutive_failures = 0;
                self.consecutive_faults = 0;
                self.ejection = None;
                self.last_fault = None;
                if let Some(latency) = latency {
                    self.latency.push(*latency);
                }
                // The probe succeeded (or no cooldown applied): back to
                // active, and the ladder starts again from the bottom.
                self.cooldowns
                    .retain(|c| !c.applies_to(model) || c.is_active(now));
            }
            Outcome::RateLimited { cooldown, note } => {
                self.record_failure(note, wall);
                self.cool_down(scope, *cooldown, policy, now);
            }
            Outcome::QuotaSpent { rest, note } => {
                self.record_failure(note, wall);
                self.rest(*rest, now);
            }
            Outcome::Rejected(note) => {
                self.record_failure(note, wall);
                self.invalid = Some(note.message.clone());
            }
            Outcome::NoAccess(note) => {
                self.record_failure(note, wall);
                self.no_access
                    .retain(|mark| mark.until > now && mark.model.as_deref() != model);
                self.no_access.push(NoAccessMark {
                    model: model.map(String::from),
                    until: now + policy.no_access,
                    note: note.clone(),
                });
                self.release_probe(model, now);
            }
            Outcome::Failed(note) => {
                self.record_failure(note, wall);
                self.consecutive_faults = self.consecutive_faults.saturating_add(1);
                // Only the provider's own errors (5xx, 529) hint at
                // provider-wide trouble; network faults may be ours.
                if note.status.is_some_and(|s| s >= 500) {
                    self.last_fault = Some(now);
                }
                self.release_probe(model, now);
            }
            Outcome::RequestFault | Outcome::Cancelled => {
                self.release_probe(model, now);
                if let Some(ejection) = &mut self.ejection {
                    ejection.probing = false;
                }
            }
        }
        self.dirty = true;
    }

    /// A key-wide rest of exactly `rest` (never shortened if one is longer
    /// already): the provider said when the quota refills.
    pub fn rest(&mut self, rest: Duration, now: Instant) {
        let until = now + rest;
        match self.cooldowns.iter_mut().find(|c| c.model.is_none()) {
            Some(cooldown) => {
                cooldown.until = cooldown.until.max(until);
                cooldown.probing = false;
            }
            None => self.cooldowns.push(Cooldown {
                model: None,
                until,
                level: 0,
                probing: false,
                gate: None,
            }),
        }
        self.dirty = true;
    }

    fn cool_down(
        &mut self,
        scope: Option<&str>,
        hint: Option<Duration>,
        policy: &CooldownPolicy,
        now: Instant,
    ) {
        match self
            .cooldowns
            .iter_mut()
            .find(|c| c.model.as_deref() == scope)
        {
            Some(cooldown) => {
                // Limited again on its probe: one rung up. Limited again
                // while still resting (parallel requests): same rung, and
                // the rest is only ever extended.
                if !cooldown.is_active(now) {
                    cooldown.level = cooldown.level.saturating_add(1);
                }
                let until = now + policy.length(cooldown.level, hint);
                cooldown.until = cooldown.until.max(until);
                cooldown.probing = false;
            }
            None => self.cooldowns.push(Cooldown {
                model: scope.map(String::from),
                until: now + policy.length(0, hint),
                level: 0,
                probing: false,
                gate: None,
            }),
        }
    }

    fn release_probe(&mut self, model: Option<&str>, now: Instant) {
        for cooldown in &mut self.cooldowns {
            if cooldown.applies_to(model) && !cooldown.is_active(now) {
                cooldown.probing = false;
            }
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

    /// Clears failures, histories, cooldowns and the invalid mark.
    pub fn reset(&mut self) {
        self.invalid = None;
        self.cooldowns.clear();
        self.no_access.clear();
        self.ejection = None;
        self.consecutive_faults = 0;
        self.failures = 0;
        self.consecutive_failures = 0;
        self.last_error = None;
        self.last_fault = None;
        self.history.clear();
        self.dirty = true;
    }
}

pub fn format_time(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}
