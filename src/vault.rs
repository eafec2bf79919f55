//! Provider keys at rest: the master key's source, importing keys from the
//! environment, and opening every stored key at startup. Joins `crypto`
//! (sealing) and `store` (rows); nothing here touches HTTP.
//!
//! Startup opens every stored key before it writes anything, so a wrong
//! ENCRYPTION_KEY stops keygate with the database untouched.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

use crate::crypto::{CryptoError, KeyCipher, MasterKey};
use crate::domain::key_fields::{CacheScope, KeyLabel, KeySpec, KeyWeight};
use crate::domain::{KeyEntry, KeyId, ProviderKind};
use crate::scrub::mask_key;
use crate::store::keys::{self, KeyUpdate, StoredKey};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(
        "{count} of {total} stored keys cannot be decrypted with the current ENCRYPTION_KEY \
         (it differs from the one they were sealed with); set the original ENCRYPTION_KEY. \
         Nothing was changed"
    )]
    WrongEncryptionKey { count: usize, total: usize },
    #[error(
        "{count} stored keys failed their integrity check (tampered or corrupted); nothing was changed"
    )]
    Tampered { count: usize },
    #[error("cannot use the encryption key file {path}: {reason}")]
    KeyFile { path: PathBuf, reason: String },
    #[error("this key is already stored for the provider")]
    Duplicate,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where the master key came from; a generated one is worth a warning.
pub enum MasterKeySource {
    Environment,
    File(PathBuf),
    Generated(PathBuf),
}

/// The cipher for ENCRYPTION_KEY if set; else for `<data dir>/encryption.key`,
/// created (mode 0600) with a random key on first start.
pub fn resolve_cipher(
    configured: Option<&MasterKey>,
    data_dir: &Path,
) -> Result<(KeyCipher, MasterKeySource), VaultError> {
    if let Some(key) = configured {
        return Ok((KeyCipher::new(key), MasterKeySource::Environment));
    }
    let path = data_dir.join("encryption.key");
    let key_file_error = |reason: String| VaultError::KeyFile {
        path: path.clone(),
        reason,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let key = MasterKey::from_hex(&text).map_err(|e| key_file_error(e.to_string()))?;
            Ok((KeyCipher::new(&key), MasterKeySource::File(path)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let (key, hex_text) = MasterKey::generate();
            write_private_file(&path, hex_text.expose_secret())
                .map_err(|e| key_file_error(e.to_string()))?;
            Ok((KeyCipher::new(&key), MasterKeySource::Generated(path)))
        }
        Err(e) => Err(key_file_error(e.to_string())),
    }
}

fn write_private_file(path: &Path, contents: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    writeln!(file, "{contents}")?;
    file.sync_all()
}

/// An admin's changes to a stored key; `None` leaves a field as it is.
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyChanges<'a> {
    pub name: Option<&'a KeyLabel>,
    pub weight: Option<KeyWeight>,
    pub enabled: Option<bool>,
    /// `Some(None)`: the key becomes its own scope again.
    pub scope: Option<Option<&'a CacheScope>>,
}

pub struct Vault {
    store: Store,
    cipher: KeyCipher,
}

impl Vault {
    pub fn new(store: Store, cipher: KeyCipher) -> Self {
        Self { store, cipher }
    }

    /// Opens every stored key of every provider; fails if any cannot be
    /// opened, saying how many and why.
    pub async fn verify_all(&self) -> Result<usize, VaultError> {
        let rows = keys::all(&self.store).await?;
        let mut wrong_key = 0;
        let mut tampered = 0;
        for row in &rows {
            match self.open(row) {
                Ok(_) => {}
                Err(CryptoError::WrongMasterKey) => wrong_key += 1,
                Err(_) => tampered += 1,
            }
        }
        if wrong_key > 0 {
            return Err(VaultError::WrongEncryptionKey {
                count: wrong_key,
                total: rows.len(),
            });
        }
        if tampered > 0 {
            return Err(VaultError::Tampered { count: tampered });
        }
        Ok(rows.len())
    }

    /// Stores each key not yet stored for `provider`, and gives a stored
    /// one the scope, label and weight its spec names (a spec that names
    /// none leaves the stored key as it is); all in one transaction;
    /// returns how many were new.
    pub async fn import(
        &self,
        provider: ProviderKind,
        api_keys: &[KeySpec],
    ) -> Result<usize, VaultError> {
        let mut tx = self.store.begin().await?;
        let mut stored = keys::fingerprints_in(&mut tx, provider.as_str()).await?;
        let mut added = 0;
        for api_key in api_keys {
            // Sealing costs far more than a fingerprint, and a stored key's
            // settings are found by fingerprint alone: only new keys (not
            // repeats within `api_keys`) are sealed.
            let fingerprint = self
                .cipher
                .fingerprint(provider.as_str(), api_key.secret.secret());
            let new = stored.insert(fingerprint.clone())
                && keys::insert_if_new(&mut tx, &self.seal_new(provider, api_key)).await?;
            if new {
                added += 1;
            } else if api_key.scope.is_some() || api_key.label.is_some() || api_key.weight.is_some()
            {
                let change = KeyUpdate {
                    name: api_key.label.as_ref().map(KeyLabel::as_str),
                    weight: api_key.weight.map(|w| i64::from(w.get())),
                    enabled: None,
                    cache_scope: api_key.scope.as_ref().map(CacheScope::as_str),
                };
                keys::adopt_settings(&mut tx, provider.as_str(), &fingerprint, change).await?;
            }
        }
        tx.commit().await?;
        Ok(added)
    }

    /// Stores one new key; a key already stored for `provider` is refused.
    pub async fn add(
        &self,
        provider: ProviderKind,
        api_key: &KeySpec,
    ) -> Result<KeyEntry, VaultError> {
        let row = self.seal_new(provider, api_key);
        let mut tx = self.store.begin().await?;
        if !keys::insert_if_new(&mut tx, &row).await? {
            return Err(VaultError::Duplicate);
        }
        tx.commit().await?;
        Ok(entry(&row, Arc::new(api_key.secret.secret().clone())))
    }

    /// Stored keys of `provider` as listed to people: never decrypted.
    pub async fn list(&self, provider: ProviderKind) -> Result<Vec<StoredKey>, VaultError> {
        Ok(keys::for_provider(&self.store, provider.as_str()).await?)
    }

    /// Changes a key's name, weight, switch or cache scope (`Some(None)`
    /// clears the scope); `None` if there is no such key.
    pub async fn update(
        &self,
        provider: ProviderKind,
        id: &str,
        change: KeyChanges<'_>,
    ) -> Result<Option<StoredKey>, VaultError> {
        let store = &self.store;
        let update = KeyUpdate {
            name: change.name.map(KeyLabel::as_str),
            weight: change.weight.map(|w| i64::from(w.get())),
            enabled: change.enabled,
            cache_scope: change
                .scope
                .map(|scope| scope.map_or("", CacheScope::as_str)),
        };
        if !keys::update(store, provider.as_str(), id, update).await? {
            return Ok(None);
        }
        Ok(keys::find(store, provider.as_str(), id).await?)
    }

    /// Deletes a key and its state; whether it existed.
    pub async fn remove(&self, provider: ProviderKind, id: &str) -> Result<bool, VaultError> {
        Ok(keys::delete(&self.store, provider.as_str(), id).await?)
    }

    /// Re-seals every stored key under `next` in one transaction: all keys
    /// move to the new master key, or (on any failure) none does.
    pub async fn rotate(&self, next: &KeyCipher) -> Result<usize, VaultError> {
        let mut tx = self.store.begin().await?;
        let rows = keys::all_in(&mut tx).await?;
        for row in &rows {
            let secret = self.open(row).map_err(|e| match e {
                CryptoError::WrongMasterKey => VaultError::WrongEncryptionKey {
                    count: 1,
                    total: rows.len(),
                },
                _ => VaultError::Tampered { count: 1 },
            })?;
            let fingerprint = next.fingerprint(&row.provider, &secret);
            let sealed = next.seal(&secret, &[&row.provider, &fingerprint, &row.id]);
            keys::reseal(&mut tx, &row.id, &fingerprint, &sealed).await?;
        }
        tx.commit().await?;
        Ok(rows.len())
    }

    /// The decrypted keys of `provider`, oldest first.
    pub async fn load(&self, provider: ProviderKind) -> Result<Vec<KeyEntry>, VaultError> {
        let rows = keys::for_provider(&self.store, provider.as_str()).await?;
        rows.iter()
            .map(|row| {
                let secret = self.open(row).map_err(|e| match e {
                    CryptoError::WrongMasterKey => {
                        VaultError::WrongEncryptionKey { count: 1, total: 1 }
                    }
                    _ => VaultError::Tampered { count: 1 },
                })?;
                Ok(entry(row, Arc::new(secret)))
            })
            .collect()
    }

    /// The decrypted key `id` of `provider`, if stored.
    pub async fn open_one(
        &self,
        provider: ProviderKind,
        id: &str,
    ) -> Result<Option<KeyEntry>, VaultError> {
        let Some(row) = keys::find(&self.store, provider.as_str(), id).await? else {
            return Ok(None);
        };
        let secret = self
            .open(&row)
            .map_err(|_| VaultError::Tampered { count: 1 })?;
        Ok(Some(entry(&row, Arc::new(secret))))
    }

    /// Changes whenever keys are added, removed, switched, weighted or named.
    pub async fn key_set_signature(&self) -> Result<String, VaultError> {
        Ok(keys::signature(&self.store).await?)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Whether `cipher` uses the master key this vault seals with (rotating
    /// to the same key is refused).
    pub fn seals_with(&self, cipher: &KeyCipher) -> bool {
        self.cipher.same_master_key(cipher)
    }

    fn seal_new(&self, provider: ProviderKind, spec: &KeySpec) -> StoredKey {
        let api_key = spec.secret.secret();
        let fingerprint = self.cipher.fingerprint(provider.as_str(), api_key);
        let id = new_key_id();
        StoredKey {
            sealed_key: self
                .cipher
                .seal(api_key, &[provider.as_str(), &fingerprint, &id]),
            id,
            provider: provider.as_str().to_string(),
            fingerprint,
            masked: mask_key(api_key),
            name: spec.label.clone().map(KeyLabel::into_string),
            weight: i64::from(spec.weight.unwrap_or(KeyWeight::DEFAULT).get()),
            enabled: true,
            cache_scope: spec.scope.clone().map(CacheScope::into_string),
        }
    }

    fn open(&self, row: &StoredKey) -> Result<SecretString, CryptoError> {
        self.cipher
            .open(&row.sealed_key, &[&row.provider, &row.fingerprint, &row.id])
    }
}

/// A stored row and its opened secret, as the pool holds it.
pub fn entry(row: &StoredKey, secret: Arc<SecretString>) -> KeyEntry {
    KeyEntry {
        id: KeyId::new(row.id.as_str()),
        masked: row.masked.clone(),
        name: row.name.clone(),
        weight: u32::try_from(row.weight.max(0)).unwrap_or(1),
        enabled: row.enabled,
        scope: row.cache_scope.as_deref().map(Arc::from),
        secret,
    }
}

fn new_key_id() -> String {
    let mut bytes = [0u8; 6];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("key_{}", hex::encode(bytes))
}
