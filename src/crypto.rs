//! Sealing provider keys at rest: AES-256-CBC with a fresh random IV per
//! value, then HMAC-SHA256 over everything that defines the record
//! (encrypt-then-MAC, as Fernet does). The tag is checked in constant time
//! before any decryption, so a tampered or moved ciphertext is an error and
//! never garbage plaintext, and padding errors cannot become an oracle.
//!
//! Three independent subkeys come from the master key through HKDF-SHA256:
//! one for AES, one for the MAC, one for the keyed fingerprint that
//! identifies a provider key without decrypting it. A short key id, also
//! derived, is stored with every record so a wrong master key is recognised
//! at once.
//!
//! Stored text format: `v1:<key id hex8>:<iv hex32>:<ciphertext hex>:<tag hex64>`.

use aes::Aes256;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const FORMAT_V1: u8 = 1;
const FORMAT_V1_TAG: &str = "v1";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("must be exactly 64 hexadecimal characters (32 bytes), without 0x or spaces")]
    BadMasterKey,
    #[error("stored value is not in a known format")]
    Malformed,
    #[error("stored value was sealed with a different ENCRYPTION_KEY")]
    WrongMasterKey,
    #[error("stored value failed its integrity check (tampered or corrupted)")]
    Tampered,
}

/// The 32-byte ENCRYPTION_KEY. Never printed; wiped from memory on drop.
pub struct MasterKey(SecretBox<[u8; 32]>);

impl MasterKey {
    pub fn from_hex(hex_text: &str) -> Result<Self, CryptoError> {
        // A trailing newline from a key file is the only tolerated extra.
        let hex_text = hex_text.strip_suffix('\n').unwrap_or(hex_text);
        if hex_text.len() != 64 || !hex_text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(CryptoError::BadMasterKey);
        }
        let mut bytes = Box::new([0u8; 32]);
        hex::decode_to_slice(hex_text, bytes.as_mut_slice())
            .map_err(|_| CryptoError::BadMasterKey)?;
        Ok(Self(SecretBox::new(bytes)))
    }

    /// A new random master key and its hex form (to be written to a file).
    pub fn generate() -> (Self, SecretString) {
        let mut bytes = Box::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(bytes.as_mut_slice());
        let hex_text = SecretString::from(hex::encode(bytes.as_slice()));
        (Self(SecretBox::new(bytes)), hex_text)
    }
}

/// Seals and opens stored provider keys; computes fingerprints.
pub struct KeyCipher {
    enc_key: Zeroizing<[u8; 32]>,
    mac_key: Zeroizing<[u8; 32]>,
    fingerprint_key: Zeroizing<[u8; 32]>,
    key_id: [u8; 4],
}

impl KeyCipher {
    pub fn new(master: &MasterKey) -> Self {
        let hkdf = Hkdf::<Sha256>::new(None, master.0.expose_secret());
        let derive = |info: &[u8]| {
            let mut out = Zeroizing::new([0u8; 32]);
            // 32 bytes is far below HKDF-SHA256's 8160-byte output limit.
            let _ = hkdf.expand(info, out.as_mut_slice());
            out
        };
        let id = derive(b"keygate v1 key-id");
        Self {
            enc_key: derive(b"keygate v1 aes-cbc"),
            mac_key: derive(b"keygate v1 hmac"),
            fingerprint_key: derive(b"keygate v1 fingerprint"),
            key_id: [id[0], id[1], id[2], id[3]],
        }
    }

    /// Keyed fingerprint of a provider key: stable, reveals nothing without
    /// the master key, and unique per (provider, key).
    pub fn fingerprint(&self, provider: &str, api_key: &SecretString) -> String {
        let mut mac = self.mac_with(&self.fingerprint_key);
        mac.update(provider.as_bytes());
        mac.update(&[0]);
        mac.update(api_key.expose_secret().as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Whether `other` comes from the same master key (compared in constant
    /// time, through a derived subkey, so no master key is ever compared).
    pub fn same_master_key(&self, other: &KeyCipher) -> bool {
        use subtle::ConstantTimeEq;
        self.mac_key
            .as_slice()
            .ct_eq(other.mac_key.as_slice())
            .into()
    }

    /// Encrypts `api_key`, binding it to `context` (provider and fingerprint)
    /// so a ciphertext copied into another row fails to open.
    pub fn seal(&self, api_key: &SecretString, context: &[&str]) -> String {
        let mut iv = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut iv);
        let ciphertext = cbc::Encryptor::<Aes256>::new(self.enc_key.as_slice().into(), &iv.into())
            .encrypt_padded_vec_mut::<Pkcs7>(api_key.expose_secret().as_bytes());
        let tag = self.tag(&self.key_id, &iv, &ciphertext, context);
        format!(
            "{FORMAT_V1_TAG}:{}:{}:{}:{}",
            hex::encode(self.key_id),
            hex::encode(iv),
            hex::encode(&ciphertext),
            hex::encode(tag)
        )
    }

    /// Verifies the tag, then decrypts. Any failure is an error.
    pub fn open(&self, sealed: &str, context: &[&str]) -> Result<SecretString, CryptoError> {
        let mut parts = sealed.split(':');
        let (Some(FORMAT_V1_TAG), Some(key_id), Some(iv), Some(ciphertext), Some(tag), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(CryptoError::Malformed);
        };
        let key_id: [u8; 4] = decode_fixed(key_id)?;
        let iv: [u8; 16] = decode_fixed(iv)?;
        let tag: [u8; 32] = decode_fixed(tag)?;
        let ciphertext = hex::decode(ciphertext).map_err(|_| CryptoError::Malformed)?;
        if ciphertext.is_empty() || ciphertext.len() % 16 != 0 {
            return Err(CryptoError::Malformed);
        }
        if key_id != self.key_id {
            return Err(CryptoError::WrongMasterKey);
        }
        let mut mac = self.mac_with(&self.mac_key);
        feed_tag_input(&mut mac, &key_id, &iv, &ciphertext, context);
        mac.verify_slice(&tag).map_err(|_| CryptoError::Tampered)?;
        let plaintext = Zeroizing::new(
            cbc::Decryptor::<Aes256>::new(self.enc_key.as_slice().into(), &iv.into())
                .decrypt_padded_vec_mut::<Pkcs7>(&ciphertext)
                .map_err(|_| CryptoError::Tampered)?,
        );
        let text = std::str::from_utf8(&plaintext).map_err(|_| CryptoError::Tampered)?;
        Ok(SecretString::from(text))
    }

    fn tag(
        &self,
        key_id: &[u8; 4],
        iv: &[u8; 16],
        ciphertext: &[u8],
        context: &[&str],
    ) -> [u8; 32] {
        let mut mac = self.mac_with(&self.mac_key);
        feed_tag_input(&mut mac, key_id, iv, ciphertext, context);
        mac.finalize().into_bytes().into()
    }

    fn mac_with(&self, key: &[u8; 32]) -> HmacSha256 {
        // HMAC accepts keys of any length; 32 bytes cannot fail.
        <HmacSha256 as Mac>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
    }
}

/// version || key id || iv || len(ct) || ct || for each context: len || bytes.
/// Length prefixes keep field boundaries from shifting.
fn feed_tag_input(
    mac: &mut HmacSha256,
    key_id: &[u8; 4],
    iv: &[u8; 16],
    ciphertext: &[u8],
    context: &[&str],
) {
    mac.update(&[FORMAT_V1]);
    mac.update(key_id);
    mac.update(iv);
    mac.update(&(ciphertext.len() as u64).to_be_bytes());
    mac.update(ciphertext);
    for field in context {
        mac.update(&(field.len() as u64).to_be_bytes());
        mac.update(field.as_bytes());
    }
}

fn decode_fixed<const N: usize>(hex_text: &str) -> Result<[u8; N], CryptoError> {
    let mut out = [0u8; N];
    hex::decode_to_slice(hex_text, &mut out).map_err(|_| CryptoError::Malformed)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    const OTHER: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

    fn cipher(hex_text: &str) -> KeyCipher {
        KeyCipher::new(&MasterKey::from_hex(hex_text).unwrap())
    }

    fn secret(text: &str) -> SecretString {
        SecretString::from(text)
    }

    #[test]
    fn round_trip_with_fresh_iv() {
        let cipher = cipher(MASTER);
        let a = cipher.seal(&secret("sk-ant-api03-abc"), &["anthropic", "fp"]);
        let b = cipher.seal(&secret("sk-ant-api03-abc"), &["anthropic", "fp"]);
        assert_ne!(a, b, "same key must not give the same ciphertext");
        assert!(a.starts_with("v1:"));
        assert!(!a.contains("sk-ant"));
        let opened = cipher.open(&a, &["anthropic", "fp"]).unwrap();
        assert_eq!(opened.expose_secret(), "sk-ant-api03-abc");
    }

    #[test]
    fn wrong_master_key_is_recognised() {
        let sealed = cipher(MASTER).seal(&secret("sk-ant-x"), &["anthropic"]);
        assert_eq!(
            cipher(OTHER).open(&sealed, &["anthropic"]).err(),
            Some(CryptoError::WrongMasterKey)
        );
    }

    #[test]
    fn any_flipped_character_fails_the_tag() {
        let cipher = cipher(MASTER);
        let sealed = cipher.seal(&secret("sk-ant-api03-abcdefgh"), &["anthropic"]);
        let prefix = "v1:".len() + 9;
        for i in prefix..sealed.len() {
            let mut bytes = sealed.clone().into_bytes();
            if bytes[i] == b':' {
                continue;
            }
            bytes[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
            let tampered = String::from_utf8(bytes).unwrap();
            assert!(
                cipher.open(&tampered, &["anthropic"]).is_err(),
                "flip at {i} opened"
            );
        }
    }

    #[test]
    fn ciphertext_moved_to_another_context_fails() {
        let cipher = cipher(MASTER);
        let sealed = cipher.seal(&secret("sk-1"), &["anthropic", "fp-a"]);
        assert_eq!(
            cipher.open(&sealed, &["anthropic", "fp-b"]).err(),
            Some(CryptoError::Tampered)
        );
    }

    #[test]
    fn master_key_format_is_strict() {
        assert!(MasterKey::from_hex(MASTER).is_ok());
        assert!(MasterKey::from_hex(&format!("{MASTER}\n")).is_ok());
        for bad in [
            "",
            "abc",
            &format!("0x{}", &MASTER[2..]),
            &format!(" {}", &MASTER[1..]),
            &"g".repeat(64),
        ] {
            assert!(MasterKey::from_hex(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn same_master_key_is_recognised() {
        assert!(cipher(MASTER).same_master_key(&cipher(MASTER)));
        assert!(!cipher(MASTER).same_master_key(&cipher(OTHER)));
    }

    #[test]
    fn fingerprint_is_keyed_and_provider_scoped() {
        let a = cipher(MASTER);
        let key = secret("sk-ant-same");
        assert_eq!(
            a.fingerprint("anthropic", &key),
            a.fingerprint("anthropic", &key)
        );
        assert_ne!(
            a.fingerprint("anthropic", &key),
            a.fingerprint("openai", &key)
        );
        assert_ne!(
            a.fingerprint("anthropic", &key),
            cipher(OTHER).fingerprint("anthropic", &key)
        );
    }
}
