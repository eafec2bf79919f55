-- The ledger's raw rows, packed: see migrations/sqlite/0009_usage_blocks.sql.
-- Rows already in usage_requests are moved into blocks by keygate when it
-- starts (src/store/usage/legacy.rs).
CREATE TABLE usage_blocks (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    first_at_ms BIGINT NOT NULL,
    last_at_ms  BIGINT NOT NULL,
    row_count   BIGINT NOT NULL,
    format      BIGINT NOT NULL,
    rows        BYTEA  NOT NULL
);

CREATE INDEX usage_blocks_at ON usage_blocks (last_at_ms, first_at_ms);
