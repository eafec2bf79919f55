//! What a provider key, its name and its weight may be, checked the same way
//! by the admin API and the CLI before anything is stored. Problems are
//! described without ever quoting the key.

/// Longest key accepted; real provider keys are around 100-200 bytes.
pub const MAX_KEY_BYTES: usize = 512;
/// Longest name accepted, in characters.
pub const MAX_LABEL_CHARS: usize = 100;
/// Largest weight for the weighted strategy.
pub const MAX_WEIGHT: u32 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyRuleError {
    #[error("must not be empty")]
    EmptyKey,
    #[error("longer than 512 bytes")]
    KeyTooLong,
    #[error("contains whitespace or control characters")]
    KeyCharacters,
    #[error("must be 1 to 100 printable characters")]
    BadLabel,
    #[error("must be 1 to 1000")]
    BadWeight,
}

/// Keys are opaque, but never empty, never with whitespace or control
/// characters (a pasted newline), and never huge.
pub fn check_key(key: &str) -> Result<(), KeyRuleError> {
    if key.trim().is_empty() {
        return Err(KeyRuleError::EmptyKey);
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(KeyRuleError::KeyTooLong);
    }
    if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(KeyRuleError::KeyCharacters);
    }
    Ok(())
}

/// A name, trimmed: one line of 1 to 100 characters.
pub fn check_label(label: &str) -> Result<String, KeyRuleError> {
    let label = label.trim();
    let length = label.chars().count();
    if length == 0 || length > MAX_LABEL_CHARS || label.chars().any(char::is_control) {
        return Err(KeyRuleError::BadLabel);
    }
    Ok(label.to_string())
}

pub fn check_weight(weight: u32) -> Result<u32, KeyRuleError> {
    if (1..=MAX_WEIGHT).contains(&weight) {
        Ok(weight)
    } else {
        Err(KeyRuleError::BadWeight)
    }
}
