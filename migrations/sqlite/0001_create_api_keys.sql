-- Provider API keys, sealed (see src/crypto.rs). The plaintext never touches
-- the database; `fingerprint` is a keyed HMAC that identifies a key for
-- deduplication without decrypting it, and `label` is its masked display form.
CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    provider    TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    sealed_key  TEXT NOT NULL,
    label       TEXT NOT NULL,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (provider, fingerprint)
);
