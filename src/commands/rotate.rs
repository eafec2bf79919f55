//! `keygate rotate-encryption-key`: re-seals every stored key under a new
//! master key in one transaction (`Vault::rotate`: all keys move, or none).
//!
//! Order matters when the master key lives in the data folder's
//! `encryption.key`: the new key is first written beside it (mode 0600,
//! `encryption.key.new`), then the database is rotated, then the file is
//! renamed over the old one. A failed rotation removes the staged file and
//! leaves everything as it was; a failed rename leaves the new key on disk
//! and says where, so the re-sealed keys can never be left without their
//! key. With ENCRYPTION_KEY the operator must change it; the command says so.

use std::io::Write;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};

use super::CommandError;
use super::secret_input::secret_or_stdin;
use crate::config::Config;
use crate::crypto::{KeyCipher, MasterKey};
use crate::startup::open_vault;
use crate::vault::MasterKeySource;

/// Rotates to `new_key` (hex, or `-` for stdin) and reports what changed.
pub async fn run(
    config: &Config,
    new_key: &SecretString,
    out: &mut impl Write,
) -> Result<(), CommandError> {
    let new_hex = secret_or_stdin(
        new_key,
        "the new key",
        "new encryption key (64 hex characters)",
    )
    .await?;
    let next = KeyCipher::new(
        &MasterKey::from_hex(new_hex.expose_secret()).map_err(CommandError::BadNewKey)?,
    );
    let (vault, source) = open_vault(config).await?;
    if vault.seals_with(&next) {
        return Err(CommandError::SameKey);
    }
    let key_file = match source {
        MasterKeySource::Environment => None,
        MasterKeySource::File(path) | MasterKeySource::Generated(path) => Some(path),
    };
    let staged = match &key_file {
        Some(path) => Some(stage(path, &new_hex)?),
        None => None,
    };
    let count = match vault.rotate(&next).await {
        Ok(count) => count,
        Err(error) => {
            if let Some(staged) = &staged {
                // The old key still opens everything; the staged one must
                // not be mistaken for the current key later.
                let _ = std::fs::remove_file(staged);
            }
            return Err(error.into());
        }
    };
    // The file is replaced before anything is printed: a closed stdout must
    // not leave re-sealed keys beside the old key file.
    if let (Some(path), Some(staged)) = (&key_file, &staged) {
        replace(staged, path)?;
    }
    let keys = if count == 1 { "key" } else { "keys" };
    writeln!(
        out,
        "re-sealed {count} stored {keys} with the new encryption key"
    )?;
    match &key_file {
        Some(path) => writeln!(out, "wrote the new key to {}", path.display())?,
        None => writeln!(
            out,
            "ENCRYPTION_KEY must now be set to the new key before the next start: \
             the old key no longer opens the stored keys"
        )?,
    }
    Ok(())
}

/// Writes the new key next to `path` as `<name>.new`, private from its
/// creation (never world-readable, even briefly), and flushed to disk.
fn stage(path: &Path, hex_text: &SecretString) -> Result<PathBuf, CommandError> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".new");
    let staged = path.with_file_name(name);
    write_private(&staged, hex_text).map_err(|source| CommandError::KeyFileWrite {
        path: staged.clone(),
        source,
    })?;
    Ok(staged)
}

fn write_private(path: &Path, hex_text: &SecretString) -> std::io::Result<()> {
    // A leftover from an interrupted run holds no key in use: the current
    // key just opened every stored key.
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(hex_text.expose_secret().as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// Renames `staged` over `path` (atomic on one filesystem), then flushes the
/// folder so the rename survives a power cut.
fn replace(staged: &Path, path: &Path) -> Result<(), CommandError> {
    std::fs::rename(staged, path).map_err(|source| CommandError::KeyFileNotReplaced {
        path: path.to_path_buf(),
        new_path: staged.to_path_buf(),
        source,
    })?;
    #[cfg(unix)]
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && let Err(error) = std::fs::File::open(folder).and_then(|dir| dir.sync_all())
    {
        tracing::warn!(%error, "cannot flush the folder of the new key file");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_new_key_file_is_private_and_replaces_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("encryption.key");
        std::fs::write(&path, "old\n").unwrap();
        let new_hex = SecretString::from("ab".repeat(32));
        let staged = stage(&path, &new_hex).unwrap();
        assert_eq!(staged, dir.path().join("encryption.key.new"));
        let mode = std::fs::metadata(&staged).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // A second staging (an interrupted earlier run) replaces the first.
        let staged = stage(&path, &new_hex).unwrap();
        replace(&staged, &path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", "ab".repeat(32))
        );
        assert!(!staged.exists());
    }
}
