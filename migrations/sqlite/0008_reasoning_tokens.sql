-- Of each request's output tokens, those the model spent reasoning
-- (OpenAI's reasoning_tokens). A part of output_tokens, not an addition:
-- cost_nanos already prices them as output. Rows and rollups written
-- before this migration were never split and read 0.
ALTER TABLE usage_requests ADD COLUMN reasoning_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_5min ADD COLUMN reasoning_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN reasoning_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_daily ADD COLUMN reasoning_tokens INTEGER NOT NULL DEFAULT 0;
