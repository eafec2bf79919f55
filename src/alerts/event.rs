//! The words of alerting: the conditions keygate watches for, what one of
//! them is about (`Subject`: condition, provider, key), what the watcher
//! finds on a look at a pool (`Finding`), and the `Alert` a channel sends.
//! Alerts carry key ids and masked forms only, never key material.

use std::time::SystemTime;

use serde::Serialize;

use crate::domain::{KeyId, ProviderKind};

/// A condition worth telling a person about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// No key of a provider can serve: each is cooling down, ejected,
    /// invalid or disabled.
    AllKeysUnavailable,
    /// A key the provider rejected (bad, revoked, out of credit).
    KeyInvalid,
    /// A key ejected again and again for provider faults.
    KeyEjectedRepeatedly,
    /// Most of a provider's keys just met provider faults (5xx, 529).
    ProviderOverloaded,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AllKeysUnavailable => "all_keys_unavailable",
            Self::KeyInvalid => "key_invalid",
            Self::KeyEjectedRepeatedly => "key_ejected_repeatedly",
            Self::ProviderOverloaded => "provider_overloaded",
        }
    }
}

/// What a condition is about; at most one of each is open at a time, and
/// dedup counts per subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subject {
    pub condition: Condition,
    pub provider: ProviderKind,
    /// Set for the key conditions.
    pub key: Option<KeyId>,
}

/// A key as alerts name it: its id and masked form (`sk-ant-…Xa1b`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRef {
    pub id: KeyId,
    pub masked: String,
}

/// A condition that holds on this look at a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub subject: Subject,
    /// The key's masked form, for key conditions.
    pub masked: Option<String>,
    /// Why, in words (scrubbed of key material).
    pub reason: String,
    /// When it is expected to end by itself (a cooldown's or an
    /// ejection's end), if it will.
    pub until: Option<SystemTime>,
}

impl Finding {
    pub fn key(&self) -> Option<KeyRef> {
        self.subject.key.as_ref().map(|id| KeyRef {
            id: id.clone(),
            masked: self.masked.clone().unwrap_or_default(),
        })
    }
}

/// What a message says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    /// A condition began (or held past the dedup window unannounced).
    Opened(Condition),
    /// A condition that was announced has ended.
    Recovered(Condition),
    /// `POST /api/alerts/test`.
    Test,
}

impl AlertKind {
    /// The `event` field of the JSON body.
    pub fn event(self) -> &'static str {
        match self {
            Self::Opened(condition) => condition.as_str(),
            Self::Recovered(_) => "recovered",
            Self::Test => "test",
        }
    }

    pub fn condition(self) -> Option<Condition> {
        match self {
            Self::Opened(condition) | Self::Recovered(condition) => Some(condition),
            Self::Test => None,
        }
    }
}

/// One message, as every channel sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub kind: AlertKind,
    pub provider: Option<ProviderKind>,
    pub key: Option<KeyRef>,
    pub reason: String,
    /// When the condition began (for a test: now).
    pub since: SystemTime,
    /// Opened: when it is expected to end by itself. Recovered: when it
    /// ended.
    pub until: Option<SystemTime>,
}

impl Alert {
    /// The message `POST /api/alerts/test` sends.
    pub fn test(now: SystemTime) -> Self {
        Self {
            kind: AlertKind::Test,
            provider: None,
            key: None,
            reason: "a test message from keygate (POST /api/alerts/test): this channel works"
                .into(),
            since: now,
            until: None,
        }
    }
}
