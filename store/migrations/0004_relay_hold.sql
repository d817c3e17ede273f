-- 0004: fault isolation for the relay (issue 10).
-- committed_at: when the change was written (created_at is the recorded time
-- during a replay), so the age of the unpublished backlog can be told.
ALTER TABLE match_changes ADD COLUMN IF NOT EXISTS committed_at timestamptz NOT NULL DEFAULT now();
-- A match whose next change cannot be published is held here: the relay skips
-- its changes (every other match keeps flowing) until `livescore relay release`.
CREATE TABLE IF NOT EXISTS relay_held (
    match_id  bigint PRIMARY KEY REFERENCES matches (id) ON DELETE CASCADE,
    seq       bigint NOT NULL,
    reason    text NOT NULL,
    held_at   timestamptz NOT NULL DEFAULT now()
);
