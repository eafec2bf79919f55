//! Serialisable snapshots of a pool, as the admin routes show them. They hold
//! ids, names and masked labels only, never key material.

use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::time::Instant;

use super::latency::LatencySummary;
use super::slot::{KeySlot, format_time};
use crate::domain::{KeyId, ProviderKind, RateLimits, ceil_secs};

/// Provider-level counters, the body of `GET /api/keypool/stats`.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct PoolStats {
    pub total_keys: usize,
    pub available_keys: usize,
    pub cooling_down_keys: usize,
    pub invalid_keys: usize,
    pub disabled_keys: usize,
    /// Keys out of rotation for failing again and again.
    pub ejected_keys: usize,
    /// Client requests, not upstream attempts.
    pub total_requests: u64,
    pub successful_requests: u64,
    pub failed_requests: u64,
    /// Times a request moved to another key after a failed attempt.
    pub rotations: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct FailureRecord {
    /// RFC 3339 time of the failure.
    pub at: String,
    pub status: Option<u16>,
    pub error_type: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CooldownStatus {
    /// `null`: the whole key; else the model it applies to.
    pub model: Option<String>,
    pub remaining_secs: u64,
    /// Rung of the cooldown ladder (0: first).
    pub level: u8,
    /// Rest over; the next request probes the key.
    pub half_open: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeyStatus {
    pub id: KeyId,
    /// The admin's name for the key, else its masked form.
    pub label: String,
    /// Always the masked form, e.g. `sk-ant-…Xa1b`.
    pub masked: String,
    /// `active`, `cooling_down`, `ejected`, `invalid` or `disabled`.
    pub state: &'static str,
    pub weight: u32,
    pub enabled: bool,
    /// The cache scope the key uses: its organisation's, else its own id.
    pub scope: std::sync::Arc<str>,
    pub cooldown_remaining_secs: u64,
    pub cooldown_level: u8,
    pub cooldowns: Vec<CooldownStatus>,
    pub invalid_reason: Option<String>,
    pub disabled_reason: Option<&'static str>,
    /// Upstream attempts made with this key.
    pub requests: u64,
    pub in_flight: u32,
    pub successes: u64,
    pub failures: u64,
    pub consecutive_failures: u64,
    pub last_used_at: Option<String>,
    pub last_error: Option<String>,
    /// The latest rate-limit windows the upstream reported for this key.
    pub rate_limits: Option<RateLimits>,
    pub latency: Option<LatencySummary>,
    /// The last failures, newest last.
    pub failure_history: Vec<FailureRecord>,
    /// Models this key works for but has no access to, for now.
    pub no_access: Vec<NoAccessStatus>,
    /// Out of rotation for failing again and again (`null` when not).
    pub ejection: Option<EjectionStatus>,
    /// Times the key was ejected, in all.
    pub ejections: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct EjectionStatus {
    /// What its last fault said.
    pub reason: String,
    /// Seconds until it returns (0: its one probe is due or out).
    pub returns_in_secs: u64,
    /// RFC 3339 time it returns.
    pub returns_at: String,
    /// Ejections in a row; each doubles the time out.
    pub level: u8,
}

#[derive(Debug, Clone, Serialize)]
pub struct NoAccessStatus {
    /// `null`: every model.
    pub model: Option<String>,
    pub remaining_secs: u64,
    pub reason: String,
}

/// The body of `GET /api/keypool/{provider}/status`.
#[derive(Debug, Clone, Serialize)]
pub struct PoolStatus {
    pub provider: ProviderKind,
    pub strategy: &'static str,
    pub cooldown_secs: f64,
    pub cooldown_max_secs: f64,
    pub max_attempts: u32,
    pub stats: PoolStats,
    pub keys: Vec<KeyStatus>,
}

pub(super) fn key_status(slot: &KeySlot, now: Instant, wall: SystemTime) -> KeyStatus {
    let cooling_until = slot.any_active_cooldown(now);
    let state = if !slot.entry.enabled {
        "disabled"
    } else if slot.invalid.is_some() {
        "invalid"
    } else if slot.is_ejected(now) {
        "ejected"
    } else if cooling_until.is_some() {
        "cooling_down"
    } else {
        "active"
    };
    KeyStatus {
        id: slot.entry.id.clone(),
        label: slot.entry.label().to_string(),
        masked: slot.entry.masked.clone(),
        state,
        weight: slot.entry.weight,
        enabled: slot.entry.enabled,
        scope: slot.entry.cache_scope(),
        cooldown_remaining_secs: ceil_secs(
            cooling_until.map_or(Duration::ZERO, |until| until - now),
        ),
        cooldown_level: slot.cooldowns.iter().map(|c| c.level).max().unwrap_or(0),
        cooldowns: slot
            .cooldowns
            .iter()
            .map(|c| CooldownStatus {
                model: c.model.clone(),
                remaining_secs: ceil_secs(c.until.saturating_duration_since(now)),
                level: c.level,
                half_open: !c.is_active(now),
            })
            .collect(),
        invalid_reason: slot.invalid.clone(),
        disabled_reason: (!slot.entry.enabled).then_some("disabled by an admin"),
        requests: slot.requests,
        in_flight: slot.in_flight,
        successes: slot.successes,
        failures: slot.failures,
        consecutive_failures: slot.consecutive_failures,
        last_used_at: slot.last_used_at.map(format_time),
        last_error: slot.last_error.clone(),
        rate_limits: slot.limits,
        latency: slot.latency.summary(),
        failure_history: slot.history.iter().cloned().collect(),
        no_access: slot
            .no_access
            .iter()
            .filter(|mark| mark.until > now)
            .map(|mark| NoAccessStatus {
                model: mark.model.clone(),
                remaining_secs: ceil_secs(mark.until - now),
                reason: mark.note.message.clone(),
            })
            .collect(),
        ejection: slot.ejection.as_ref().map(|e| EjectionStatus {
            reason: e.reason.clone(),
            returns_in_secs: ceil_secs(e.until.saturating_duration_since(now)),
            returns_at: format_time(wall + e.until.saturating_duration_since(now)),
            level: e.level,
        }),
        ejections: slot.ejections,
    }
}
