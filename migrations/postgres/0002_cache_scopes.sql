-- Cache scopes: the same columns as migrations/sqlite/0005_cache_scopes.sql
-- (see there for their meaning).
ALTER TABLE api_keys ADD COLUMN cache_scope TEXT;
ALTER TABLE usage_requests ADD COLUMN cache_scope TEXT;
