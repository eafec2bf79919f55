//! What a provider key, its label and its weight may be, as types that can
//! only exist checked ("parse, don't validate"): the admin API, the CLI and
//! the environment all build a `KeySecret`, `KeyLabel`, `KeyWeight` or `CacheScope` the
//! same way, and the vault takes nothing else. Problems are described
//! without ever quoting the key.

use secrecy::{ExposeSecret, SecretString};

/// Longest key accepted; real provider keys are around 100-200 bytes.
pub const MAX_KEY_BYTES: usize = 512;
/// Longest label accepted, in characters.
pub const MAX_LABEL_CHARS: usize = 100;
/// Weights the weighted strategy accepts.
pub const WEIGHTS: std::ops::RangeInclusive<u32> = 1..=1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyRuleError {
    #[error("must not be empty")]
    EmptyKey,
    #[error("longer than 512 bytes")]
    KeyTooLong,
    #[error(
        "must be printable ASCII: no whitespace or control characters, nothing invisible or non-ASCII"
    )]
    KeyCharacters,
    #[error("must be 1 to 100 printable characters")]
    BadLabel,
    #[error("must be 1 to 1000")]
    BadWeight,
    #[error("must be 1 to 100 printable characters")]
    BadScope,
}

/// A provider key that passed the rules: never empty, never huge, and only
/// printable ASCII. Keys travel as raw header bytes, so a zero-width space
/// or a right-to-left mark would be sent as is, and would let two keys
/// that look the same once masked both be stored.
#[derive(Clone)]
pub struct KeySecret(SecretString);

impl KeySecret {
    /// Checks `key` (trimmed by the caller where trimming is wanted).
    pub fn parse(key: SecretString) -> Result<Self, KeyRuleError> {
        let text = key.expose_secret();
        if text.trim().is_empty() {
            return Err(KeyRuleError::EmptyKey);
        }
        if text.len() > MAX_KEY_BYTES {
            return Err(KeyRuleError::KeyTooLong);
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(KeyRuleError::KeyCharacters);
        }
        Ok(Self(key))
    }

    pub fn secret(&self) -> &SecretString {
        &self.0
    }

    pub fn into_secret(self) -> SecretString {
        self.0
    }
}

/// An admin's name for a key (`team-a`): trimmed, one line of 1 to 100
/// characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLabel(String);

/// `text` trimmed, if it is one line of 1 to `MAX_LABEL_CHARS` characters.
fn one_line(text: &str) -> Option<&str> {
    let text = text.trim();
    let length = text.chars().count();
    (length > 0 && length <= MAX_LABEL_CHARS && !text.chars().any(char::is_control)).then_some(text)
}

impl KeyLabel {
    pub fn parse(label: &str) -> Result<Self, KeyRuleError> {
        one_line(label)
            .map(|label| Self(label.to_string()))
            .ok_or(KeyRuleError::BadLabel)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A key to store and what was said about it, all checked: from the
/// environment, the admin API or the CLI.
#[derive(Clone)]
pub struct KeySpec {
    pub secret: KeySecret,
    pub label: Option<KeyLabel>,
    /// `None`: the default (1) for a new key; a stored key keeps its own.
    pub weight: Option<KeyWeight>,
    pub scope: Option<CacheScope>,
}

impl KeySpec {
    /// A bare key, as `ANTHROPIC_API_KEYS` has always listed them.
    pub fn bare(secret: KeySecret) -> Self {
        Self {
            secret,
            label: None,
            weight: None,
            scope: None,
        }
    }
}

/// The name of the organisation or workspace whose prompt cache a key
/// uses (`acme-prod`): keys with the same scope share a cache. Trimmed,
/// one line of 1 to 100 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheScope(String);

impl CacheScope {
    pub fn parse(scope: &str) -> Result<Self, KeyRuleError> {
        one_line(scope)
            .map(|scope| Self(scope.to_string()))
            .ok_or(KeyRuleError::BadScope)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::str::FromStr for CacheScope {
    type Err = KeyRuleError;

    /// For the CLI's `--scope`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

/// A key's share under the weighted strategy, within `WEIGHTS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyWeight(u32);

impl KeyWeight {
    pub const DEFAULT: KeyWeight = KeyWeight(1);

    pub fn parse(weight: u32) -> Result<Self, KeyRuleError> {
        if WEIGHTS.contains(&weight) {
            Ok(Self(weight))
        } else {
            Err(KeyRuleError::BadWeight)
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl std::str::FromStr for KeyWeight {
    type Err = KeyRuleError;

    /// For the CLI's `--weight`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.trim()
            .parse::<u32>()
            .map_err(|_| KeyRuleError::BadWeight)
            .and_then(Self::parse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> Result<(), KeyRuleError> {
        KeySecret::parse(SecretString::from(text)).map(|_| ())
    }

    #[test]
    fn keys_are_printable_ascii_of_bounded_length() {
        assert_eq!(key("sk-ant-api03-abcDEF_123"), Ok(()));
        assert_eq!(key(""), Err(KeyRuleError::EmptyKey));
        assert_eq!(
            key(&"k".repeat(MAX_KEY_BYTES + 1)),
            Err(KeyRuleError::KeyTooLong)
        );
        for bad in [
            "sk-ant key",
            "sk-ant\nkey",
            "sk-ant\u{200B}key",
            "sk-ant\u{202E}key",
            "sk-ant-🔑",
            "sk-äöü",
        ] {
            assert_eq!(key(bad), Err(KeyRuleError::KeyCharacters), "{bad:?}");
        }
    }

    #[test]
    fn labels_are_trimmed_single_lines() {
        assert_eq!(KeyLabel::parse(" team-a ").unwrap().as_str(), "team-a");
        assert!(KeyLabel::parse("  ").is_err());
        assert!(KeyLabel::parse("a\nb").is_err());
        assert!(KeyLabel::parse(&"n".repeat(MAX_LABEL_CHARS + 1)).is_err());
    }

    #[test]
    fn scopes_are_trimmed_single_lines() {
        assert_eq!(CacheScope::parse(" acme ").unwrap().as_str(), "acme");
        assert_eq!(CacheScope::parse(""), Err(KeyRuleError::BadScope));
        assert_eq!(CacheScope::parse("a\tb"), Err(KeyRuleError::BadScope));
        assert!(CacheScope::parse(&"s".repeat(MAX_LABEL_CHARS + 1)).is_err());
    }

    #[test]
    fn weights_stay_in_range() {
        assert_eq!(KeyWeight::parse(1).unwrap().get(), 1);
        assert_eq!(KeyWeight::parse(1000).unwrap().get(), 1000);
        assert!(KeyWeight::parse(0).is_err());
        assert!(KeyWeight::parse(1001).is_err());
        assert_eq!("7".parse::<KeyWeight>().unwrap().get(), 7);
        assert!("x".parse::<KeyWeight>().is_err());
    }
}
