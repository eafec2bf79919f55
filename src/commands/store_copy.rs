//! `keygate store copy --from URL --to URL`: moves an installation (keys,
//! saved state, the usage ledger) from one database to another, typically
//! from the SQLite file to PostgreSQL, in one transaction on the target
//! (`store::copy`). Idempotent: a second run adds nothing.
//!
//! The master key is checked on both sides before anything is written:
//! ENCRYPTION_KEY must open every key in the source (the copy moves seals,
//! which only that key opens) and every key already in the target (one
//! database, one master key). URLs are printed with their password masked.

use std::io::Write;

use super::CommandError;
use crate::config::Config;
use crate::crypto::KeyCipher;
use crate::store::copy::copy_all;
use crate::store::{Store, redacted_url};
use crate::vault::{Vault, VaultError};

/// Copies `from` into `to` and prints the counts per table.
pub async fn run(
    config: &Config,
    from: &str,
    to: &str,
    out: &mut impl Write,
) -> Result<(), CommandError> {
    let Some(master) = config.encryption_key.as_ref() else {
        return Err(CommandError::CopyWithoutKey);
    };
    if from.trim() == to.trim() {
        return Err(CommandError::CopyOntoItself);
    }
    let source = Store::connect_existing(from).await?;
    let target = Store::connect(to).await?;
    check_key(&source, KeyCipher::new(master), "source").await?;
    check_key(&target, KeyCipher::new(master), "target").await?;
    let report = copy_all(&source, &target).await?;
    source.close().await;
    target.close().await;
    writeln!(out, "copied {} to {}", redacted_url(from), redacted_url(to))?;
    for table in report {
        writeln!(
            out,
            "{}: {} new ({} in the source)",
            table.table, table.new_rows, table.source_rows
        )?;
    }
    Ok(())
}

/// Every stored key of `store` opens with `cipher`.
async fn check_key(
    store: &Store,
    cipher: KeyCipher,
    side: &'static str,
) -> Result<(), CommandError> {
    match Vault::new(store.clone(), cipher).verify_all().await {
        Ok(_) => Ok(()),
        Err(VaultError::WrongEncryptionKey { count, total }) => {
            Err(CommandError::CopyWrongKey { side, count, total })
        }
        Err(error) => Err(error.into()),
    }
}
