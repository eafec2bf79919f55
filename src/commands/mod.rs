//! The one-shot commands run by the `keygate` binary besides serving:
//! managing stored keys, checking them, rotating the master key and moving
//! the stored data to another database.
//!
//! - `keys`: `keygate keys list|add|remove|enable|disable`.
//! - `test_keys`: `keygate keys test`, checking keys against their upstream.
//! - `rotate`: `keygate rotate-encryption-key`, all or nothing.
//! - `store_copy`: `keygate store copy`, one database into another.
//! - `secret_input`: secrets and labels as the commands take them (`-`
//!   reads stdin).
//!
//! Every command opens the vault with `startup::open_vault`, so a wrong
//! ENCRYPTION_KEY or a tampered row is refused before anything is read or
//! written, and imports nothing from the environment. Results go to the
//! `out` writer (stdout in the binary), one line per item; progress and
//! notes go to stderr; nothing printed ever holds a key, only ids and masked
//! forms.

pub mod keys;
pub mod rotate;
mod secret_input;
pub mod store_copy;
pub mod test_keys;

use crate::crypto::CryptoError;
use crate::domain::ProviderKind;
use crate::startup::StartupError;
use crate::store::StoreError;
use crate::vault::{Vault, VaultError};

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Copy(#[from] crate::store::copy::CopyError),
    #[error(
        "ENCRYPTION_KEY must be set for store copy: the key that opens the source's keys \
         (for a SQLite install without it, the contents of encryption.key in its data folder)"
    )]
    CopyWithoutKey,
    #[error("--from and --to name the same database")]
    CopyOntoItself,
    #[error(
        "{count} of {total} keys in the {side} cannot be decrypted with ENCRYPTION_KEY; set the \
         key they were sealed with (both databases must use the same one). Nothing was copied"
    )]
    CopyWrongKey {
        side: &'static str,
        count: usize,
        total: usize,
    },
    #[error("this key is already stored for {0}")]
    Duplicate(ProviderKind),
    /// Says what is wrong with a key without quoting it.
    #[error("invalid --key: {0}")]
    BadKey(crate::domain::key_fields::KeyRuleError),
    #[error("invalid --from-file: {0}")]
    KeyFile(crate::config::key_files::KeyFileError),
    #[error("give --key or --from-file")]
    NothingToAdd,
    #[error("invalid --label: {0}")]
    BadLabel(crate::domain::key_fields::KeyRuleError),
    #[error("{}", unknown_key_message(.id, *.provider))]
    UnknownKey {
        id: String,
        provider: Option<ProviderKind>,
    },
    #[error("invalid --new-key: {0}")]
    BadNewKey(CryptoError),
    #[error("--new-key is the current encryption key; nothing was changed")]
    SameKey,
    #[error("cannot read {what} from stdin: {source}")]
    Stdin {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("{failed} of {total} keys did not pass the check")]
    ChecksFailed { failed: usize, total: usize },
    #[error(transparent)]
    Upstreams(#[from] crate::providers::UpstreamsError),
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
    #[error("cannot write the new key file {path}: {source}; nothing was changed")]
    KeyFileWrite {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the stored keys are now sealed with the new key, but {path} could not be replaced \
         ({source}); move {new_path} to {path} before the next start"
    )]
    KeyFileNotReplaced {
        path: std::path::PathBuf,
        new_path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// Echoes the id only when it looks like one: an operator who pastes a key
/// where an id belongs must not see it printed back (or logged by a CI run).
fn unknown_key_message(id: &str, provider: Option<ProviderKind>) -> String {
    let looks_like_an_id = id.starts_with("key_")
        && id.len() <= 40
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let which = if looks_like_an_id {
        format!("no stored key has the id {id}")
    } else {
        "no stored key has that id (ids look like key_0123456789ab)".to_string()
    };
    match provider {
        Some(provider) => format!("{which} for {provider}"),
        None => which,
    }
}

/// The provider given, else the one whose stored keys include `id` (ids are
/// unique across providers).
async fn provider_of(
    vault: &Vault,
    id: &str,
    given: Option<ProviderKind>,
) -> Result<ProviderKind, CommandError> {
    if let Some(provider) = given {
        return Ok(provider);
    }
    for &provider in ProviderKind::ALL {
        if vault.list(provider).await?.iter().any(|row| row.id == id) {
            return Ok(provider);
        }
    }
    Err(CommandError::UnknownKey {
        id: id.to_string(),
        provider: None,
    })
}

/// The providers a command covers: the one given, else all.
fn providers(given: Option<ProviderKind>) -> Vec<ProviderKind> {
    match given {
        Some(provider) => vec![provider],
        None => ProviderKind::ALL.to_vec(),
    }
}

/// Text stored by others (names, upstream reasons) made safe for one output
/// line: control characters (newlines, terminal escapes) become spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_id_is_echoed_only_when_it_looks_like_an_id() {
        let message = unknown_key_message("key_0a1b2c3d4e5f", Some(ProviderKind::Anthropic));
        assert_eq!(
            message,
            "no stored key has the id key_0a1b2c3d4e5f for anthropic"
        );
        let message = unknown_key_message("sk-ant-api03-secret", None);
        assert!(!message.contains("secret"), "{message}");
    }

    #[test]
    fn stored_text_stays_on_one_line() {
        assert_eq!(one_line("team\na\x1b[31m"), "team a [31m");
    }
}
