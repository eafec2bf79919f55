//! Secrets and names as the commands take them: `-` reads a secret from
//! stdin (one line), keeping it out of shell history and the process list;
//! keys and names are checked before anything is stored. Messages describe
//! the problem and never quote the input.

use std::io::IsTerminal;

use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use super::CommandError;
use crate::domain::key_fields::{KeyLabel, KeySecret};

/// Most bytes read from stdin: past any valid key, so a longer line is
/// refused as too long rather than silently cut.
const MAX_STDIN_BYTES: u64 = 4096;

/// `value` itself, or for `-` the first line of stdin (after `prompt` on
/// stderr when stdin is a terminal). Surrounding whitespace is trimmed.
pub async fn secret_or_stdin(
    value: &SecretString,
    what: &'static str,
    prompt: &str,
) -> Result<SecretString, CommandError> {
    if value.expose_secret() != "-" {
        return Ok(SecretString::from(value.expose_secret().trim()));
    }
    if std::io::stdin().is_terminal() {
        eprint!("{prompt}: ");
    }
    let mut line = Zeroizing::new(String::new());
    BufReader::new(tokio::io::stdin().take(MAX_STDIN_BYTES))
        .read_line(&mut line)
        .await
        .map_err(|source| CommandError::Stdin { what, source })?;
    Ok(SecretString::from(line.trim()))
}

/// Checks a provider key (already trimmed) before it is sealed.
pub fn parse_key(key: SecretString) -> Result<KeySecret, CommandError> {
    KeySecret::parse(key).map_err(CommandError::BadKey)
}

/// Checks and trims an optional name.
pub fn parse_label(label: Option<String>) -> Result<Option<KeyLabel>, CommandError> {
    label
        .map(|label| KeyLabel::parse(&label).map_err(CommandError::BadLabel))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::key_fields::{MAX_KEY_BYTES, MAX_LABEL_CHARS};

    fn check(key: &str) -> Result<(), String> {
        parse_key(SecretString::from(key))
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn keys_are_checked_without_being_quoted() {
        assert!(check("sk-ant-api03-abc").is_ok());
        assert!(check(&"a".repeat(MAX_KEY_BYTES)).is_ok());
        for bad in ["", "sk-ant a", "sk-ant\u{7}", "sk\u{a0}x"] {
            assert!(check(bad).is_err(), "{bad:?} accepted");
        }
        let too_long = "sk-secret-".repeat(60);
        let message = check(&too_long).err().unwrap_or_default();
        assert!(message.contains("512 bytes"), "{message}");
        assert!(!message.contains("sk-secret"), "{message}");
    }

    #[tokio::test]
    async fn a_key_given_inline_is_trimmed() {
        let key = secret_or_stdin(&SecretString::from(" sk-x \n"), "the key", "key")
            .await
            .unwrap();
        assert_eq!(key.expose_secret(), "sk-x");
    }

    #[test]
    fn names_are_trimmed_and_kept_on_one_line() {
        assert_eq!(
            parse_label(Some(" team-a ".into()))
                .unwrap()
                .unwrap()
                .as_str(),
            "team-a"
        );
        assert_eq!(parse_label(None).unwrap(), None);
        assert!(parse_label(Some("  ".into())).is_err());
        assert!(parse_label(Some("a\nb".into())).is_err());
        assert!(parse_label(Some("n".repeat(MAX_LABEL_CHARS + 1))).is_err());
    }
}
