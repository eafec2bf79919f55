//! A key as the rest of keygate sees it: its public id, the decrypted entry
//! a pool holds, and the lease one upstream attempt borrows.

use std::sync::Arc;

use secrecy::SecretString;
use serde::Serialize;

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

    /// The id as a shared string, without copying it.
    pub fn shared(&self) -> Arc<str> {
        self.0.clone()
    }
}

// Lets a map keyed by `KeyId` be searched with a plain `&str` (the
// derived `Hash` hashes the same string).
impl std::borrow::Borrow<str> for KeyId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A decrypted key as a pool holds it.
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
    /// The organisation or workspace whose prompt cache the key uses, as
    /// an admin named it; keys with the same scope share a cache.
    pub scope: Option<Arc<str>>,
    pub secret: Arc<SecretString>,
}

impl KeyEntry {
    /// How people see the key: its name, else its masked form.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.masked)
    }

    /// The cache the key uses: its scope, else its own (a key without a
    /// scope shares a cache with no other).
    pub fn cache_scope(&self) -> Arc<str> {
        self.scope.clone().unwrap_or_else(|| self.id.shared())
    }
}

/// The key chosen for one upstream attempt: its id (for reports and
/// headers), its secret, and its per-minute input-token limit if the
/// upstream has told us (to recognise a request that can never fit it);
/// nothing else, so leasing allocates nothing.
#[derive(Clone)]
pub struct KeyLease {
    pub id: KeyId,
    pub secret: Arc<SecretString>,
    /// The key's cache scope (see `KeyEntry::cache_scope`).
    pub scope: Arc<str>,
    pub token_limit: Option<u64>,
}
