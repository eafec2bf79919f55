-- Resources only their creating key can see (a stored OpenAI response, a
-- batch, an uploaded file), each with the id of the key that created it,
-- so later calls naming the resource go to that key alone, across
-- restarts and replicas. No foreign key to api_keys: a key deleted later
-- must still be found here, so the resource can answer why it is gone.
-- A row is kept until the resource's documented lifetime ends
-- (`expires_at_ms`, milliseconds since the Unix epoch).
CREATE TABLE resource_bindings (
    provider      TEXT    NOT NULL,
    resource_id   TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    key_id        TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    PRIMARY KEY (provider, resource_id)
);
CREATE INDEX resource_bindings_expiry ON resource_bindings (expires_at_ms);
