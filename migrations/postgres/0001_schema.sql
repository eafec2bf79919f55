-- keygate's schema for PostgreSQL: the SQLite migrations 0001-0004
-- (migrations/sqlite/) in one, since no PostgreSQL store predates them.
-- Tables, columns and their meaning are the same (see the SQLite files for
-- the comments on each); the differences are PostgreSQL's types:
-- - every number is BIGINT (SQLite's INTEGER is 64-bit, and keygate reads
--   each as i64);
-- - `enabled` is BOOLEAN;
-- - SQLite's implicit `rowid` orders keys by insertion; here an identity
--   column of the same name does, so the same queries serve both;
-- - `usage_requests.id` is an identity column (SQLite's rowid alias);
-- - timestamps stay ISO-8601 text in the SQLite format, so `keygate store
--   copy` moves them verbatim.

CREATE TABLE api_keys (
    rowid       BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    id          TEXT PRIMARY KEY,
    provider    TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    sealed_key  TEXT NOT NULL,
    label       TEXT NOT NULL,
    created_at  TEXT NOT NULL
        DEFAULT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    name        TEXT,
    weight      BIGINT NOT NULL DEFAULT 1,
    enabled     BOOLEAN NOT NULL DEFAULT TRUE,
    UNIQUE (provider, fingerprint)
);

CREATE TABLE key_state (
    key_id     TEXT PRIMARY KEY REFERENCES api_keys (id) ON DELETE CASCADE,
    data       TEXT NOT NULL,
    updated_at TEXT NOT NULL
        DEFAULT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
);

CREATE TABLE provider_stats (
    provider   TEXT PRIMARY KEY,
    data       TEXT NOT NULL,
    updated_at TEXT NOT NULL
        DEFAULT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
);

CREATE TABLE usage_requests (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_ms              BIGINT NOT NULL,
    request_id         TEXT   NOT NULL,
    route              TEXT   NOT NULL,
    provider           TEXT,
    model_requested    TEXT,
    model_answered     TEXT,
    key_id             TEXT,
    attempts           BIGINT NOT NULL,
    keys_tried         TEXT   NOT NULL,
    status             BIGINT NOT NULL,
    error_class        TEXT,
    input_tokens       BIGINT NOT NULL,
    output_tokens      BIGINT NOT NULL,
    cache_read_tokens  BIGINT NOT NULL,
    cache_write_tokens BIGINT NOT NULL,
    cost_nanos         BIGINT NOT NULL,
    latency_us         BIGINT NOT NULL,
    latency_bucket     BIGINT NOT NULL,
    ttft_us            BIGINT,
    client_key         TEXT
);

CREATE INDEX usage_requests_at ON usage_requests (at_ms, id);

CREATE TABLE usage_daily (
    start_ms           BIGINT NOT NULL,
    provider           TEXT   NOT NULL,
    model              TEXT   NOT NULL,
    key_id             TEXT   NOT NULL,
    status             BIGINT NOT NULL,
    error_class        TEXT   NOT NULL,
    requests           BIGINT NOT NULL,
    input_tokens       BIGINT NOT NULL,
    output_tokens      BIGINT NOT NULL,
    cache_read_tokens  BIGINT NOT NULL,
    cache_write_tokens BIGINT NOT NULL,
    cost_nanos         BIGINT NOT NULL,
    latency_hist       TEXT   NOT NULL,
    PRIMARY KEY (start_ms, provider, model, key_id, status, error_class)
);

CREATE TABLE usage_hourly (LIKE usage_daily INCLUDING ALL);
CREATE TABLE usage_5min (LIKE usage_daily INCLUDING ALL);
