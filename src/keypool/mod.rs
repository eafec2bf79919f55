//! The key pool: one owner of key state per provider.
//!
//! - `state`: a pure, synchronous state machine (selection, cooldowns,
//!   statistics), unit-tested without tokio.
//! - `actor`: the task that owns one `PoolState` and serves messages.
//! - `handle`: the cheap, cloneable API the request path uses.
//! - `status`: the serialisable snapshots the admin routes return.

mod actor;
mod cooldown;
mod handle;
mod headroom;
mod latency;
pub mod persist;
mod persister;
mod select;
mod slot;
mod state;
mod status;

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde::Serialize;

pub use cooldown::CooldownPolicy;
pub use handle::{KeyPoolHandle, KeyPools, PoolUnavailable, RequestTracker};
pub use headroom::{RateLimits, Window};
pub use latency::LatencySummary;
pub use persister::Persister;
pub use select::Strategy;
pub use slot::FAILURE_HISTORY_LEN;
pub use state::{PoolSettings, PoolState};
pub use status::{FailureRecord, KeyStatus, PoolStats, PoolStatus, ceil_secs};

/// A key's stable public id (random, assigned when it is first stored).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct KeyId(Arc<str>);

impl KeyId {
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        Self(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A decrypted key as the pool holds it.
#[derive(Clone)]
pub struct KeyEntry {
    pub id: KeyId,
    /// Masked form, e.g. `sk-ant-…Xa1b`; safe to show.
    pub masked: String,
    /// An admin's name for it (`team-a`), if any.
    pub name: Option<String>,
    /// Share under the weighted strategy.
    pub weight: u32,
    /// Off means `disabled`: never picked.
    pub enabled: bool,
    pub secret: Arc<SecretString>,
}

impl KeyEntry {
    /// How people see the key: its name, else its masked form.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.masked)
    }
}

/// The key chosen for one upstream attempt: its id (for reports and
/// headers) and its secret, nothing else, so leasing allocates nothing.
#[derive(Clone)]
pub struct KeyLease {
    pub id: KeyId,
    pub secret: Arc<SecretString>,
}

/// What the pool answers when asked for a key.
pub enum Selection {
    Leased(KeyLease),
    /// Every usable key is cooling down; the first frees after `retry_after`.
    AllCoolingDown {
        retry_after: Duration,
    },
    /// No key can serve: none configured, or all rejected by the upstream.
    NoUsableKey {
        total: usize,
        invalid: usize,
    },
}

/// What one upstream attempt did, as far as the key is concerned.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Answered; `latency` to the answer (or a stream's first content).
    Success { latency: Option<Duration> },
    /// 429: cool the key for `cooldown` (or the configured default).
    RateLimited {
        cooldown: Option<Duration>,
        note: FailureNote,
    },
    /// 401/402/403: the upstream refuses this key; out of rotation until reset.
    Rejected(FailureNote),
    /// 5xx, network error, timeout: counted, no cooldown for a single one.
    Failed(FailureNote),
    /// The request's own fault (400, 404, …): the key did nothing wrong.
    RequestFault,
    /// The attempt was abandoned (the client went away): no verdict.
    Cancelled,
}

/// A failed attempt as recorded in a key's history (message already scrubbed).
#[derive(Debug, Clone)]
pub struct FailureNote {
    pub status: Option<u16>,
    pub error_type: String,
    pub message: String,
}
