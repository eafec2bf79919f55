-- Live key management: a free-form name, a weight for the weighted
-- strategy, and an admin on/off switch.
ALTER TABLE api_keys ADD COLUMN name TEXT;
ALTER TABLE api_keys ADD COLUMN weight INTEGER NOT NULL DEFAULT 1;
ALTER TABLE api_keys ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1;

-- Runtime state of each key (health, cooldowns, counters, failure history),
-- written behind the request path in batches and loaded at start. One JSON
-- document per key: the pool owns its shape (src/keypool/persist.rs).
CREATE TABLE key_state (
    key_id     TEXT PRIMARY KEY REFERENCES api_keys (id) ON DELETE CASCADE,
    data       TEXT NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- Provider-level counters (requests, successes, failures, rotations).
CREATE TABLE provider_stats (
    provider   TEXT PRIMARY KEY,
    data       TEXT NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
