-- A ledger row whose request used tokens of a model keygate had no price
-- for (src/pricing): its cost_nanos is 0 because the cost is unknown, not
-- because it was free. 1 for such rows; older rows were never flagged.
ALTER TABLE usage_requests ADD COLUMN unpriced BOOLEAN NOT NULL DEFAULT 0;
