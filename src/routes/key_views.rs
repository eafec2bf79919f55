//! The shapes the key-management routes answer with, in one place.

use serde::Serialize;

use crate::domain::{KeyEntry, KeyId, ProviderKind};
use crate::key_check::KeyCheck;
use crate::keypool::KeyStatus;
use crate::store::keys::StoredKey;

/// One stored key with its live state (`None` when the pool has not got it
/// yet, e.g. right after a CLI change).
#[derive(Debug, Serialize)]
pub struct KeyView<'a> {
    pub id: &'a str,
    /// The admin's name for the key, else its masked form.
    pub label: &'a str,
    pub masked: &'a str,
    pub weight: i64,
    pub enabled: bool,
    /// The cache scope the key uses: its organisation's, else its own id.
    pub scope: &'a str,
    pub state: Option<&'static str>,
    pub invalid_reason: Option<&'a str>,
}

impl<'a> KeyView<'a> {
    pub fn new(row: &'a StoredKey, status: Option<&'a KeyStatus>) -> Self {
        Self {
            id: &row.id,
            label: row.name.as_deref().unwrap_or(&row.masked),
            masked: &row.masked,
            weight: row.weight,
            enabled: row.enabled,
            scope: row.cache_scope.as_deref().unwrap_or(&row.id),
            state: status.map(|s| s.state),
            invalid_reason: status.and_then(|s| s.invalid_reason.as_deref()),
        }
    }
}

/// The answer to adding a key: never the key itself.
#[derive(Debug, Serialize)]
pub struct AddedKey<'a> {
    pub id: &'a KeyId,
    pub label: &'a str,
    pub masked: &'a str,
    pub weight: u32,
    pub enabled: bool,
    pub scope: std::sync::Arc<str>,
    /// Set when the key looks like another provider's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

impl<'a> AddedKey<'a> {
    pub fn new(entry: &'a KeyEntry, warning: Option<String>) -> Self {
        Self {
            id: &entry.id,
            label: entry.label(),
            masked: &entry.masked,
            weight: entry.weight,
            enabled: entry.enabled,
            scope: entry.cache_scope(),
            warning,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct KeyList<'a> {
    pub provider: ProviderKind,
    pub keys: Vec<KeyView<'a>>,
}

#[derive(Debug, Serialize)]
pub struct DeletedKey<'a> {
    pub id: &'a str,
    pub deleted: bool,
}

/// One key's check: `result` (and its details), then which key.
#[derive(Debug, Serialize)]
pub struct CheckedKey<'a> {
    #[serde(flatten)]
    pub check: &'a KeyCheck,
    /// What the check read the key has left (SerpApi's searches this
    /// month and this hour, Brave's windows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headroom: Option<&'a crate::domain::RateLimits>,
    pub id: &'a KeyId,
    pub label: &'a str,
}

#[derive(Debug, Serialize)]
pub struct CheckResults<'a> {
    pub provider: ProviderKind,
    pub results: Vec<CheckedKey<'a>>,
}
