//! The pool's state as it is saved: one JSON document per key and one per
//! provider (tables `key_state`, `provider_stats`). Cooldown deadlines are
//! saved as wall-clock times, since an `Instant` means nothing after a
//! restart. Also the one write made outside a running pool: recording a key
//! check from the CLI.

use serde::{Deserialize, Serialize};

use super::status::FailureRecord;
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
        provider_stats: load_provider_json(store, provider).await?,
        keys: vec![(
            key_id.to_string(),
            serde_json::to_string(&saved).unwrap_or_default(),
        )],
    };
    state::save(store.pool(), &[batch]).await
}

async fn load_provider_json(store: &Store, provider: &str) -> Result<String, StoreError> {
    Ok(state::load_provider_stats(store.pool(), provider)
        .await?
        .unwrap_or_else(|| serde_json::to_string(&SavedProvider::default()).unwrap_or_default()))
}
