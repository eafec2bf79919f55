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
    pub secret: Arc<SecretString>,
}

impl KeyEntry {
    /// How people see the key: its name, else its masked form.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.masked)
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
    pub token_limit: Option<u64>,
}
