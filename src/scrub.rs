//! Keeping key material out of everything keygate says: masked labels for
//! display, and scrubbing of upstream error text before it is stored in a
//! key's history or passed to a client (OpenAI's 401 text echoes part of the
//! key; any upstream could).

use std::sync::LazyLock;

use regex::Regex;
use secrecy::{ExposeSecret, SecretString};

const KNOWN_PREFIXES: &[&str] = &[
    "sk-ant-api03-",
    "sk-ant-admin01-",
    "sk-ant-",
    "sk-proj-",
    "sk-",
];

/// A key's display form: its known prefix and last four characters, e.g.
/// `sk-ant-api03-…Xa1b`. Short keys show no tail, so little is revealed.
pub fn mask_key(key: &SecretString) -> String {
    let key = key.expose_secret();
    let prefix = KNOWN_PREFIXES
        .iter()
        .find(|p| key.starts_with(*p))
        .copied()
        .unwrap_or("");
    let chars: Vec<char> = key.chars().collect();
    let tail: String = if chars.len() >= prefix.chars().count() + 12 {
        chars[chars.len() - 4..].iter().collect()
    } else {
        String::new()
    };
    format!("{prefix}…{tail}")
}

/// Anything shaped like a provider key, whole or already partly masked.
static KEY_LIKE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"sk-[A-Za-z0-9_\-\*\.…]{3,}").unwrap_or_else(|e| unreachable!("static regex: {e}"))
});

/// Removes `secret` and anything key-shaped from upstream text.
pub fn scrub(text: &str, secret: &SecretString) -> String {
    let secret = secret.expose_secret();
    let without_secret = if secret.is_empty() {
        text.to_string()
    } else {
        text.replace(secret, "[redacted]")
    };
    KEY_LIKE
        .replace_all(&without_secret, "[redacted]")
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_prefix_and_last_four() {
        let key = SecretString::from("sk-ant-api03-abcdefghijklmnopXa1b");
        assert_eq!(mask_key(&key), "sk-ant-api03-…Xa1b");
        assert_eq!(mask_key(&SecretString::from("sk-short")), "sk-…");
        assert_eq!(
            mask_key(&SecretString::from("plainkey-0123456789abcd")),
            "…abcd"
        );
    }

    #[test]
    fn scrub_removes_the_key_and_key_shaped_text() {
        let secret = SecretString::from("custom-secret-value");
        let text = "Incorrect API key provided: sk-proj-****abcd. Also custom-secret-value leaked";
        let clean = scrub(text, &secret);
        assert!(!clean.contains("abcd"));
        assert!(!clean.contains("custom-secret-value"));
        assert!(clean.starts_with("Incorrect API key provided: [redacted]"));
    }
}
