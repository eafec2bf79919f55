//! The keys clients must present on the proxy routes (`GATEWAY_API_KEYS`).

use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The keys clients must present on the proxy routes (`GATEWAY_API_KEYS`),
/// kept as SHA-256 digests: a request costs one hash of what it presents,
/// not one per configured key.
pub struct ClientKeys {
    digests: Vec<[u8; 32]>,
}

impl ClientKeys {
    pub fn new(keys: &[secrecy::SecretString]) -> Self {
        Self {
            digests: keys
                .iter()
                .map(|key| Sha256::digest(key.expose_secret().as_bytes()).into())
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    pub fn len(&self) -> usize {
        self.digests.len()
    }

    /// Whether `presented` is one of the keys.
    pub fn accepts(&self, presented: &str) -> bool {
        self.matching(presented).is_some()
    }

    /// The fingerprint of `presented` if it is one of the keys: `ck-` and
    /// the first 8 hex digits of its SHA-256, enough to tell a handful of
    /// client keys apart in the usage ledger, far too little to find the
    /// key from.
    pub fn fingerprint(&self, presented: &str) -> Option<String> {
        let digest = self.matching(presented)?;
        Some(format!("ck-{}", hex::encode(&digest[..4])))
    }

    /// The digest `presented` matches. Every digest is compared, in
    /// constant time, so timing does not tell which one nearly matched.
    fn matching(&self, presented: &str) -> Option<&[u8; 32]> {
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.digests.iter().fold(None, |found, expected| {
            if bool::from(presented.ct_eq(expected)) {
                Some(expected)
            } else {
                found
            }
        })
    }
}
