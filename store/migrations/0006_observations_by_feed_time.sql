-- 0006: `livescore status` counts each feed's observations of the last hour;
-- without this index that count reads the whole observations table.
CREATE INDEX IF NOT EXISTS observations_feed_created ON observations (feed, created_at);
