-- The ledger's raw rows, packed: each write of the ledger stores its rows
-- as one row here (src/store/usage/block.rs), instead of one row per
-- request in usage_requests, which cost the request path ~5 µs of CPU per
-- request. Rows already in usage_requests are moved into blocks by
-- keygate when it starts (src/store/usage/legacy.rs); the table stays,
-- empty, for the migrations before this one.
CREATE TABLE usage_blocks (
    -- A row's id is this times 65536 plus its index in the block.
    id          INTEGER PRIMARY KEY,
    -- The earliest and latest `at_ms` of the block's rows: which blocks a
    -- time range reads.
    first_at_ms INTEGER NOT NULL,
    last_at_ms  INTEGER NOT NULL,
    row_count   INTEGER NOT NULL,
    -- The encoding of `rows` (block::FORMAT).
    format      INTEGER NOT NULL,
    rows        BLOB    NOT NULL
);

-- Blocks that end after a range's start, filtered by where they begin
-- without reading the table; newest first for the page route.
CREATE INDEX usage_blocks_at ON usage_blocks (last_at_ms, first_at_ms);
