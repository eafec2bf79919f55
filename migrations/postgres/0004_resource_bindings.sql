-- The SQLite migration 0007 (migrations/sqlite/0007_resource_bindings.sql,
-- which explains the table), with PostgreSQL's BIGINT for the times.
CREATE TABLE resource_bindings (
    provider      TEXT   NOT NULL,
    resource_id   TEXT   NOT NULL,
    kind          TEXT   NOT NULL,
    key_id        TEXT   NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    PRIMARY KEY (provider, resource_id)
);
CREATE INDEX resource_bindings_expiry ON resource_bindings (expires_at_ms);
