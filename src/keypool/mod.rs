//! The key pool: one owner of key state per provider. It is pure state plus
//! the handle that owns it; saving that state is the job of
//! `store::pool_state` and the `state_saver` task, outside the pool.
//!
//! - `machine`: the pure, synchronous state machine (selection, cooldowns,
//!   statistics), unit-tested without tokio (`machine_tests`).
//! - `slot`: one key and what each outcome does to it.
//! - `cooldown`: the cooldown ladder and its half-open probes.
//! - `ejection`: taking a key that keeps failing out of rotation.
//! - `select`: the selection strategies, as a rank per key.
//! - `leasing`: which key serves next, and why none can.
//! - `ready`: the keys ready to serve, kept in the strategy's order so
//!   that a pick costs the same however large the pool (`lineup`: one
//!   such ordered set).
//! - `scopes`: which keys share a prompt cache, and selection that
//!   prefers one scope (affinity); `bound`: selecting the one key a
//!   resource belongs to.
//! - `latency`: each key's recent latencies (p50/p95).
//! - `handle`: the owner of one `PoolState` (behind a short lock, never
//!   held across an await) and the cheap, cloneable API the request path
//!   uses, with the request tracker that counts each request exactly once.
//! - `status`: the serialisable snapshots the admin routes return.
//! - `snapshot`: the pool's state in its saved form, and back.
//! - `shared`: what a pool shares with the other replicas of a cluster
//!   (its outbox, applying theirs, probe tokens); `marks`: the shared
//!   marks' wire form and what applying one does; `counts`: cluster-wide
//!   counters shown instead of this replica's own.

mod bound;
mod cooldown;
mod counts;
mod ejection;
mod handle;
mod latency;
mod leasing;
mod lineup;
mod machine;
mod marks;
mod ready;
#[cfg(test)]
mod ready_tests;
mod scopes;
mod select;
pub mod shared;
mod slot;
pub mod snapshot;
mod status;

use crate::domain::{FailureNote, KeyLease};
use std::time::Duration;

pub use cooldown::CooldownPolicy;
pub use counts::Counts;
pub use ejection::OutlierPolicy;
pub use handle::{Changes, KeyPoolHandle, KeyPools, PoolUnavailable, RequestTracker, SharedOutlet};
pub use latency::LatencySummary;
pub use machine::{PoolSettings, PoolState};
pub use select::Strategy;
pub use slot::FAILURE_HISTORY_LEN;
pub use status::{FailureRecord, KeyStatus, PoolStats, PoolStatus};

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
    /// Every usable key was found to have no access to this model; what
    /// the upstream said the last time.
    NoAccess(FailureNote),
    /// Only keys the request has found unable to serve it are left.
    Spent,
    /// The one key the request may use (see `bound`) never will again.
    BoundKeyGone(BoundKeyGone),
}

/// Why the key a resource belongs to cannot serve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoundKeyGone {
    /// Removed from the pool.
    Deleted,
    /// Rejected by the upstream: the reason given.
    Invalid(String),
    /// Switched off by an admin.
    Disabled,
}
