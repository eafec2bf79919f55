-- Cache scopes (src/affinity): the organisation or workspace whose prompt
-- cache a key uses, named by an admin; keys with the same scope share a
-- cache. NULL: the key is its own scope.
ALTER TABLE api_keys ADD COLUMN cache_scope TEXT;

-- The answering key's cache scope, so the ledger can say what caching
-- saved per scope; NULL when no key answered. Rollups are not widened:
-- per-scope sums are read from the keys' rollups and their scopes.
ALTER TABLE usage_requests ADD COLUMN cache_scope TEXT;
