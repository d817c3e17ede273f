-- 0005: a feed's own cap on the size of one response body (bytes; NULL: the
-- default cap, livescore.feeds.DEFAULT_MAX_BODY_BYTES). Set by
-- `providers add --max-body`.
ALTER TABLE feeds ADD COLUMN IF NOT EXISTS max_body_bytes integer
    CHECK (max_body_bytes IS NULL OR max_body_bytes >= 1024);
