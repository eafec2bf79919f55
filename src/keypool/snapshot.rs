//! The pool's state in its saved form: one document per key and one per
//! provider (the store keeps them, see `store::pool_state`). Cooldown
//! deadlines are saved as wall-clock times, since an `Instant` means nothing
//! after a restart. Pure data and conversion; no I/O here.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::cooldown::Cooldown;
use super::ejection::Ejection;
use super::slot::{KeySlot, NoAccessMark, format_time};
use super::status::{FailureRecord, PoolStats};
use crate::domain::FailureNote;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SavedHealth {
    #[default]
    Active,
    Invalid {
        reason: String,
    },
}

/// A cooldown on the whole key (`model: None`) or on one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedCooldown {
    pub model: Option<String>,
    /// Unix time in milliseconds when the cooldown ends.
    pub until_ms: u64,
    /// Rung of the cooldown ladder (0 = first cooldown).
    pub level: u8,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SavedKey {
    pub health: SavedHealth,
    pub cooldowns: Vec<SavedCooldown>,
    pub requests: u64,
    pub successes: u64,
    pub failures: u64,
    pub consecutive_failures: u64,
    pub last_used_at: Option<String>,
    pub last_error: Option<String>,
    pub failure_history: Vec<FailureRecord>,
    /// Models the key was found to have no access to.
    pub no_access: Vec<SavedNoAccess>,
    /// Its current ejection, if it is ejected.
    pub ejection: Option<SavedEjection>,
    /// Times it was ejected, in all.
    pub ejections: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedEjection {
    /// Unix time in milliseconds when the ejection ends.
    pub until_ms: u64,
    pub level: u8,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedNoAccess {
    pub model: Option<String>,
    /// Unix time in milliseconds when the mark ends.
    pub until_ms: u64,
    pub status: Option<u16>,
    pub error_type: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SavedProvider {
    pub total_requests: u64,
    pub successful_requests: u64,
    pub failed_requests: u64,
    pub rotations: u64,
}

impl SavedKey {
    pub(super) fn from_slot(slot: &KeySlot, now: Instant, wall: SystemTime) -> Self {
        Self {
            health: match &slot.invalid {
                Some(reason) => SavedHealth::Invalid {
                    reason: reason.clone(),
                },
                None => SavedHealth::Active,
            },
            cooldowns: slot
                .cooldowns
                .iter()
                .map(|c| SavedCooldown {
                    model: c.model.clone(),
                    until_ms: unix_ms(until_wall(c.until, now, wall)),
                    level: c.level,
                })
                .collect(),
            requests: slot.requests,
            successes: slot.successes,
            failures: slot.failures,
            consecutive_failures: slot.consecutive_failures,
            last_used_at: slot.last_used_at.map(format_time),
            last_error: slot.last_error.clone(),
            failure_history: slot.history.iter().cloned().collect(),
            no_access: slot
                .no_access
                .iter()
                .filter(|mark| mark.until > now)
                .map(|mark| SavedNoAccess {
                    model: mark.model.clone(),
                    until_ms: unix_ms(until_wall(mark.until, now, wall)),
                    status: mark.note.status,
                    error_type: mark.note.error_type.clone(),
                    message: mark.note.message.clone(),
                })
                .collect(),
            ejection: slot.ejection.as_ref().map(|e| SavedEjection {
                until_ms: unix_ms(until_wall(e.until, now, wall)),
                level: e.level,
                reason: e.reason.clone(),
            }),
            ejections: slot.ejections,
        }
    }

    pub(super) fn apply_to(&self, slot: &mut KeySlot, now: Instant, wall: SystemTime) {
        slot.invalid = match &self.health {
            SavedHealth::Active => None,
            SavedHealth::Invalid { reason } => Some(reason.clone()),
        };
        slot.cooldowns = self
            .cooldowns
            .iter()
            .map(|c| Cooldown {
                model: c.model.clone(),
                until: until_instant(c.until_ms, now, wall),
                level: c.level,
                probing: false,
                gate: None,
            })
            .collect();
        slot.requests = self.requests;
        slot.successes = self.successes;
        slot.failures = self.failures;
        slot.consecutive_failures = self.consecutive_failures;
        slot.last_used_at = self
            .last_used_at
            .as_deref()
            .and_then(|t| humantime::parse_rfc3339_weak(t).ok());
        slot.last_error = self.last_error.clone();
        slot.history = self.failure_history.iter().cloned().collect();
        slot.no_access = self
            .no_access
            .iter()
            .map(|saved| NoAccessMark {
                model: saved.model.clone(),
                until: until_instant(saved.until_ms, now, wall),
                note: FailureNote {
                    status: saved.status,
                    error_type: saved.error_type.clone(),
                    message: saved.message.clone(),
                },
            })
            .filter(|mark| mark.until > now)
            .collect();
        // Past its end it comes back half-open, as it would have.
        slot.ejection = self.ejection.as_ref().map(|saved| Ejection {
            until: until_instant(saved.until_ms, now, wall),
            level: saved.level,
            reason: saved.reason.clone(),
            probing: false,
            gate: None,
        });
        slot.ejections = self.ejections;
    }
}

impl SavedProvider {
    pub(super) fn from_stats(stats: &PoolStats) -> Self {
        Self {
            total_requests: stats.total_requests,
            successful_requests: stats.successful_requests,
            failed_requests: stats.failed_requests,
            rotations: stats.rotations,
        }
    }

    pub(super) fn apply_to(&self, stats: &mut PoolStats) {
        stats.total_requests = self.total_requests;
        stats.successful_requests = self.successful_requests;
        stats.failed_requests = self.failed_requests;
        stats.rotations = self.rotations;
    }
}

pub(super) fn until_wall(until: Instant, now: Instant, wall: SystemTime) -> SystemTime {
    if until >= now {
        wall + (until - now)
    } else {
        wall.checked_sub(now - until).unwrap_or(wall)
    }
}

/// A saved deadline as an `Instant` of this process; one already past
/// becomes a past instant (a half-open cooldown), as it would have been.
pub(super) fn until_instant(until_ms: u64, now: Instant, wall: SystemTime) -> Instant {
    let until = UNIX_EPOCH + Duration::from_millis(until_ms);
    match until.duration_since(wall) {
        Ok(ahead) => now + ahead,
        Err(behind) => now.checked_sub(behind.duration()).unwrap_or(now),
    }
}

pub(super) fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
