-- A third rollup level: the ledger's rows summed per UTC day, so totals
-- over weeks and months read a row per day instead of one per hour.
-- Existing hourly rollups are summed into it by keygate when it starts
-- (src/store/usage/rollup.rs, `backfill`): a latency histogram cannot be
-- added in SQL.
CREATE TABLE usage_daily (
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
