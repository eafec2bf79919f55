-- The usage ledger (src/store/usage/): one row per client request, written
-- in batches behind the request path, and rollups of the same rows kept in
-- the same transactions. Rows and rollups older than
-- USAGE_RETENTION_DAYS are deleted in the background.
--
-- Times are milliseconds since the Unix epoch (UTC); money is nano-dollars
-- (USD x 10^-9) as exact integers. Plain SQL throughout, so PostgreSQL can
-- run it with one change: `id` becomes BIGINT GENERATED ALWAYS AS IDENTITY.

CREATE TABLE usage_requests (
    -- SQLite's rowid: grows with every insert, the page route's tie-breaker.
    id                 INTEGER PRIMARY KEY,
    -- When the request arrived.
    at_ms              INTEGER NOT NULL,
    request_id         TEXT    NOT NULL,
    route              TEXT    NOT NULL,
    provider           TEXT,
    model_requested    TEXT,
    model_answered     TEXT,
    key_id             TEXT,
    attempts           INTEGER NOT NULL,
    -- Key ids in the order they were tried, as a JSON array.
    keys_tried         TEXT    NOT NULL,
    status             INTEGER NOT NULL,
    error_class        TEXT,
    input_tokens       INTEGER NOT NULL,
    output_tokens      INTEGER NOT NULL,
    cache_read_tokens  INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    cost_nanos         INTEGER NOT NULL,
    latency_us         INTEGER NOT NULL,
    -- domain::latency's bucket of latency_us, so the ends of a range are
    -- aggregated by bucket in SQL. The bucket scheme is fixed by this data.
    latency_bucket     INTEGER NOT NULL,
    ttft_us            INTEGER,
    client_key         TEXT
);

-- Time ranges (the ends of /api/usage's ranges, retention) and the page
-- route, newest first.
CREATE INDEX usage_requests_at ON usage_requests (at_ms, id);

-- Rollups: the same rows summed per period and dimension combination, at
-- two periods. Whole hours of a range are read from usage_hourly, whole
-- five-minute slices of its partial first and last hours from usage_5min,
-- and only the partial slices at its very ends from usage_requests. The
-- dimensions are NOT NULL ('' for unknown) because NULLs never conflict in
-- a primary key, and the writer adds to these rows with ON CONFLICT.
CREATE TABLE usage_hourly (
    -- Start of the period.
    start_ms           INTEGER NOT NULL,
    provider           TEXT    NOT NULL,
    -- The answering model, else the requested one.
    model              TEXT    NOT NULL,
    key_id             TEXT    NOT NULL,
    status             INTEGER NOT NULL,
    error_class        TEXT    NOT NULL,
    requests           INTEGER NOT NULL,
    input_tokens       INTEGER NOT NULL,
    output_tokens      INTEGER NOT NULL,
    cache_read_tokens  INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    cost_nanos         INTEGER NOT NULL,
    -- Latency counts by domain::latency bucket, sparse: "bucket:count,...".
    latency_hist       TEXT    NOT NULL,
    PRIMARY KEY (start_ms, provider, model, key_id, status, error_class)
);

CREATE TABLE usage_5min (
    start_ms           INTEGER NOT NULL,
    provider           TEXT    NOT NULL,
    model              TEXT    NOT NULL,
    key_id             TEXT    NOT NULL,
    status             INTEGER NOT NULL,
    error_class        TEXT    NOT NULL,
    requests           INTEGER NOT NULL,
    input_tokens       INTEGER NOT NULL,
    output_tokens      INTEGER NOT NULL,
    cache_read_tokens  INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    cost_nanos         INTEGER NOT NULL,
    latency_hist       TEXT    NOT NULL,
    PRIMARY KEY (start_ms, provider, model, key_id, status, error_class)
);
