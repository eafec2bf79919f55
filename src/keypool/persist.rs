//! The pool's state as it is saved: one JSON document per key and one per
//! provider (tables `key_state`, `provider_stats`). Cooldown deadlines are
//! saved as wall-clock times, since an `Instant` means nothing after a
//! restart. Also the one write made outside a running pool: recording a key
//! check from the CLI.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::KeyPools;
use super::cooldown::Cooldown;
use super::slot::{KeySlot, format_time};
use super::status::{FailureRecord, PoolStats};
use crate::keytest::KeyCheck;
use crate::store::{Store, StoreError, state};

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

fn until_wall(until: Instant, now: Instant, wall: SystemTime) -> SystemTime {
    if until >= now {
        wall + (until - now)
    } else {
        wall.checked_sub(now - until).unwrap_or(wall)
    }
}

/// A saved deadline as an `Instant` of this process; one already past
/// becomes a past instant (a half-open cooldown), as it would have been.
fn until_instant(until_ms: u64, now: Instant, wall: SystemTime) -> Instant {
    let until = UNIX_EPOCH + Duration::from_millis(until_ms);
    match until.duration_since(wall) {
        Ok(ahead) => now + ahead,
        Err(behind) => now.checked_sub(behind.duration()).unwrap_or(now),
    }
}

fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Records a key check made with the database alone (`keygate keys test`):
/// a rejected key becomes `invalid`, an accepted `invalid` one `active`. A
/// running keygate keeps its own view until it restarts.
pub async fn record_check(
    store: &Store,
    provider: &str,
    key_id: &str,
    check: &KeyCheck,
) -> Result<(), StoreError> {
    let mut saved: SavedKey = state::load_keys(store.pool(), provider)
        .await?
        .get(key_id)
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default();
    match check {
        KeyCheck::Ok => saved.health = SavedHealth::Active,
        KeyCheck::Invalid { reason, .. } => {
            saved.health = SavedHealth::Invalid {
                reason: reason.clone(),
            };
        }
        KeyCheck::Unreachable { .. } => return Ok(()),
    }
    let batch = state::StateBatch {
        provider: provider.to_string(),
        provider_stats: None,
        keys: vec![(
            key_id.to_string(),
            serde_json::to_string(&saved).unwrap_or_default(),
        )],
    };
    state::save(store.pool(), &[batch]).await
}

/// What was saved for `provider`: its counters and each key's state. A
/// document that no longer parses is skipped (with a warning), never fatal.
pub async fn load_saved(
    store: &Store,
    provider: &str,
) -> Result<(Option<SavedProvider>, HashMap<String, SavedKey>), StoreError> {
    let stats = state::load_provider_stats(store.pool(), provider)
        .await?
        .and_then(|json| serde_json::from_str(&json).ok());
    let keys = state::load_keys(store.pool(), provider)
        .await?
        .into_iter()
        .filter_map(|(id, json)| match serde_json::from_str(&json) {
            Ok(saved) => Some((id, saved)),
            Err(error) => {
                tracing::warn!(key = %id, %error, "ignoring unreadable saved key state");
                None
            }
        })
        .collect();
    Ok((stats, keys))
}

/// Writes what changed in every pool since the last flush, in one
/// transaction.
pub async fn flush(pools: &KeyPools, store: &Store) -> Result<(), StoreError> {
    let mut batches = Vec::new();
    for pool in pools.iter() {
        let Ok((provider_stats, keys)) = pool.take_changes().await else {
            continue;
        };
        if provider_stats.is_none() && keys.is_empty() {
            continue;
        }
        batches.push(state::StateBatch {
            provider: pool.provider().as_str().to_string(),
            provider_stats: provider_stats.map(|s| serde_json::to_string(&s).unwrap_or_default()),
            keys: keys
                .into_iter()
                .map(|(id, saved)| {
                    (
                        id.to_string(),
                        serde_json::to_string(&saved).unwrap_or_default(),
                    )
                })
                .collect(),
        });
    }
    if batches.is_empty() {
        return Ok(());
    }
    state::save(store.pool(), &batches).await
}
