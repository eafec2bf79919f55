//! Serialisable snapshots of a pool, as the admin routes show them. They hold
//! ids and masked labels only, never key material.

use serde::Serialize;

use super::KeyId;

/// Provider-level counters, the body of `GET /api/keypool/stats`.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct PoolStats {
    pub total_keys: usize,
    pub available_keys: usize,
    pub cooling_down_keys: usize,
    pub invalid_keys: usize,
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
pub struct KeyStatus {
    pub id: KeyId,
    pub label: String,
    /// `active`, `cooling_down` or `invalid`.
    pub state: &'static str,
    pub cooldown_remaining_secs: u64,
    pub invalid_reason: Option<String>,
    /// Upstream attempts made with this key.
    pub requests: u64,
    pub successes: u64,
    pub failures: u64,
    pub consecutive_failures: u64,
    pub last_used_at: Option<String>,
    pub last_error: Option<String>,
    /// The last failures, newest last.
    pub failure_history: Vec<FailureRecord>,
}

/// The body of `GET /api/keypool/{provider}/status`.
#[derive(Debug, Clone, Serialize)]
pub struct PoolStatus {
    pub provider: &'static str,
    pub strategy: &'static str,
    pub cooldown_secs: f64,
    pub max_attempts: u32,
    pub stats: PoolStats,
    pub keys: Vec<KeyStatus>,
}
