//! `keygate keys list|add|remove|enable|disable` (and dispatch to `keys
//! test`). Listing reads stored rows and saved health only: nothing is
//! decrypted and no key is printed, just ids and masked forms.
//!
//! These commands change the database; a keygate already running notices
//! within one `STATE_FLUSH_SECS` and updates its pools (see
//! `state_saver`), so each change says when it takes effect.

use std::io::Write;
use std::path::Path;

use secrecy::{ExposeSecret, SecretString};

use super::secret_input::{parse_key, parse_label, secret_or_stdin};
use super::{CommandError, one_line, provider_of, providers};
use crate::cli::{KeyRef, KeysCommand};
use crate::config::Config;
use crate::config::key_files::{read_key_file, read_keys};
use crate::domain::ProviderKind;
use crate::domain::key_fields::{CacheScope, KeySpec, KeyWeight};
use crate::keypool::snapshot::{SavedHealth, SavedKey};
use crate::startup::open_vault;
use crate::store::keys::StoredKey;
use crate::store::pool_state::load_saved;
use crate::vault::{KeyChanges, Vault, VaultError};

const RESTART_NOTE: &str =
    "note: a running keygate picks this up within STATE_FLUSH_SECS (default 5 s)";

/// Runs one `keygate keys …` command, writing its result to `out`.
pub async fn run(
    config: &Config,
    command: KeysCommand,
    out: &mut impl Write,
) -> Result<(), CommandError> {
    match command {
        KeysCommand::List { provider } => list(&open_vault(config).await?.0, provider, out).await,
        KeysCommand::Add {
            provider,
            key,
            from_file,
            label,
            weight,
            scope,
        } => {
            let settings = KeySettings {
                label,
                weight,
                scope,
            };
            match (key, from_file) {
                (Some(key), _) => add(config, provider, &key, settings, out).await,
                (None, Some(path)) => add_from_file(config, provider, &path, settings, out).await,
                // clap requires one of the two.
                (None, None) => Err(CommandError::NothingToAdd),
            }
        }
        KeysCommand::Remove(key) => remove(&open_vault(config).await?.0, key, out).await,
        KeysCommand::Enable(key) => switch(&open_vault(config).await?.0, key, true, out).await,
        KeysCommand::Disable(key) => switch(&open_vault(config).await?.0, key, false, out).await,
        KeysCommand::Test { provider, key_id } => {
            super::test_keys::run(config, provider, key_id, out).await
        }
    }
}

/// One line per stored key under a header; nothing at all (and a note on
/// stderr) when there are none.
async fn list(
    vault: &Vault,
    provider: Option<ProviderKind>,
    out: &mut impl Write,
) -> Result<(), CommandError> {
    let mut lines = vec![
        [
            "ID", "PROVIDER", "LABEL", "MASKED", "WEIGHT", "STATUS", "HEALTH",
        ]
        .map(String::from),
    ];
    for provider in providers(provider) {
        let (_, saved) = load_saved(vault.store(), provider).await?;
        for row in vault.list(provider).await? {
            lines.push(list_line(&row, saved.get(&row.id)));
        }
    }
    if lines.len() == 1 {
        eprintln!("no stored keys");
        return Ok(());
    }
    write_table(&lines, out)?;
    Ok(())
}

fn list_line(row: &StoredKey, saved_state: Option<&SavedKey>) -> [String; 7] {
    let health = match saved_state {
        None => "-".to_string(),
        Some(SavedKey {
            health: SavedHealth::Active,
            ..
        }) => "active".to_string(),
        Some(SavedKey {
            health: SavedHealth::Invalid { reason },
            ..
        }) => format!("invalid: {}", one_line(reason)),
    };
    [
        row.id.clone(),
        row.provider.clone(),
        one_line(row.name.as_deref().unwrap_or(&row.masked)),
        row.masked.clone(),
        row.weight.to_string(),
        if row.enabled { "enabled" } else { "disabled" }.to_string(),
        health,
    ]
}

/// Columns padded to their widest cell, two spaces apart; the last column
/// (free text) is not padded.
fn write_table<const N: usize>(lines: &[[String; N]], out: &mut impl Write) -> std::io::Result<()> {
    let mut widths = [0usize; N];
    for line in lines {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for line in lines {
        let mut text = String::new();
        for (index, (cell, width)) in line.iter().zip(widths).enumerate() {
            if index + 1 == N {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  "));
            }
        }
        writeln!(out, "{}", text.trim_end())?;
    }
    Ok(())
}

/// What `keys add` may say about a key besides the key itself; `None`:
/// not given (a new key gets the default, a stored one keeps its own).
struct KeySettings {
    label: Option<String>,
    weight: Option<KeyWeight>,
    scope: Option<CacheScope>,
}

async fn add(
    config: &Config,
    provider: ProviderKind,
    key: &SecretString,
    settings: KeySettings,
    out: &mut impl Write,
) -> Result<(), CommandError> {
    // Checked before the vault is opened: a bad key changes nothing on disk.
    let key = secret_or_stdin(key, "the key", &format!("{provider} API key")).await?;
    let spec = KeySpec {
        secret: parse_key(key)?,
        label: parse_label(settings.label)?,
        weight: settings.weight,
        scope: settings.scope,
    };
    let key = &spec.secret;
    let (vault, _source) = open_vault(config).await?;
    let entry = match vault.add(provider, &spec).await {
        Ok(entry) => entry,
        Err(VaultError::Duplicate) => return Err(CommandError::Duplicate(provider)),
        Err(other) => return Err(other.into()),
    };
    writeln!(out, "added {} ({provider}, {})", entry.id, entry.masked)?;
    if let Some(owner) = provider.foreign_key_owner(key.secret().expose_secret()) {
        eprintln!("warning: this key looks like a key for {owner}; it will be sent to {provider}");
    }
    eprintln!("{RESTART_NOTE}");
    Ok(())
}

/// Keys stored per transaction by `--from-file`, between progress lines.
const IMPORT_BATCH: usize = 500;

/// Stores every key of a file (or of stdin, `-`), in batches, reporting
/// progress on stderr. The whole file is checked before anything is
/// stored: a bad line stores nothing. A `--weight` or `--scope` given is
/// applied to keys already stored too, as the environment's settings are
/// at startup (`Vault::import`); one not given leaves them as they are.
async fn add_from_file(
    config: &Config,
    provider: ProviderKind,
    path: &Path,
    settings: KeySettings,
    out: &mut impl Write,
) -> Result<(), CommandError> {
    // clap refuses --label with --from-file: one label for many keys
    // would name none of them.
    let KeySettings { weight, scope, .. } = settings;
    let reapplied = weight.is_some() || scope.is_some();
    let keys = if path == Path::new("-") {
        read_keys(std::io::stdin().lock(), "stdin")
    } else {
        read_key_file(path)
    }
    .map_err(CommandError::KeyFile)?;
    let specs: Vec<KeySpec> = keys
        .into_iter()
        .map(|secret| KeySpec {
            secret,
            label: None,
            weight,
            scope: scope.clone(),
        })
        .collect();
    let (vault, _source) = open_vault(config).await?;
    let total = specs.len();
    let mut added = 0;
    for (batch, specs) in specs.chunks(IMPORT_BATCH).enumerate() {
        added += vault.import(provider, specs).await?;
        let done = (batch * IMPORT_BATCH + specs.len()).min(total);
        eprintln!("stored {done}/{total} keys");
    }
    let stored = total - added;
    let updated = if reapplied && stored > 0 {
        ", now with the given --weight/--scope"
    } else {
        ""
    };
    writeln!(
        out,
        "added {added} of {total} keys ({provider}); {stored} already stored{updated}"
    )?;
    let foreign = specs
        .iter()
        .find_map(|spec| provider.foreign_key_owner(spec.secret.secret().expose_secret()));
    if let Some(owner) = foreign {
        eprintln!(
            "warning: some of these keys look like keys for {owner}; they will be sent to {provider}"
        );
    }
    eprintln!("{RESTART_NOTE}");
    Ok(())
}

async fn remove(vault: &Vault, key: KeyRef, out: &mut impl Write) -> Result<(), CommandError> {
    let provider = provider_of(vault, &key.id, key.provider).await?;
    if !vault.remove(provider, &key.id).await? {
        return Err(unknown(key));
    }
    writeln!(out, "removed {} ({provider})", key.id)?;
    eprintln!("{RESTART_NOTE}");
    Ok(())
}

async fn switch(
    vault: &Vault,
    key: KeyRef,
    enabled: bool,
    out: &mut impl Write,
) -> Result<(), CommandError> {
    let provider = provider_of(vault, &key.id, key.provider).await?;
    let Some(row) = vault
        .update(
            provider,
            &key.id,
            KeyChanges {
                enabled: Some(enabled),
                ..KeyChanges::default()
            },
        )
        .await?
    else {
        return Err(unknown(key));
    };
    let done = if enabled { "enabled" } else { "disabled" };
    let label = one_line(row.name.as_deref().unwrap_or(&row.masked));
    writeln!(out, "{done} {} ({provider}, {label})", row.id)?;
    eprintln!("{RESTART_NOTE}");
    Ok(())
}

fn unknown(key: KeyRef) -> CommandError {
    CommandError::UnknownKey {
        id: key.id,
        provider: key.provider,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: Option<&str>, enabled: bool) -> StoredKey {
        StoredKey {
            id: "key_0a1b2c3d4e5f".into(),
            provider: "anthropic".into(),
            fingerprint: "fp".into(),
            sealed_key: "v1:sealed".into(),
            masked: "sk-ant-api03-…Zq7k".into(),
            name: name.map(String::from),
            weight: 3,
            enabled,
            cache_scope: None,
        }
    }

    #[test]
    fn a_listed_key_shows_its_name_or_masked_form_and_saved_health() {
        let line = list_line(&row(None, true), None);
        assert_eq!(line[2], "sk-ant-api03-…Zq7k");
        assert_eq!(line[5], "enabled");
        assert_eq!(line[6], "-");
        let saved = r#"{"health":{"state":"invalid","reason":"bad\nkey"}}"#;
        let saved: SavedKey = serde_json::from_str(saved).unwrap();
        let line = list_line(&row(Some("team-a"), false), Some(&saved));
        assert_eq!(line[2], "team-a");
        assert_eq!(line[5], "disabled");
        assert_eq!(line[6], "invalid: bad key");
        let active: SavedKey = serde_json::from_str(r#"{"health":{"state":"active"}}"#).unwrap();
        let line = list_line(&row(None, true), Some(&active));
        assert_eq!(line[6], "active");
    }

    #[test]
    fn the_table_is_aligned_and_the_last_column_unpadded() {
        let lines = [
            ["ID", "X", "LAST"].map(String::from),
            ["key_1", "longer", "free text"].map(String::from),
        ];
        let mut out = Vec::new();
        write_table(&lines, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "ID     X       LAST\nkey_1  longer  free text\n"
        );
    }
}
