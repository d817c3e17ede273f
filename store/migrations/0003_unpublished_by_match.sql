-- 0003: the relay claims unpublished changes in (match_id, seq) order; index
-- that order instead of (created_at, ...), which a replay's recorded times
-- do not keep in commit order.
DROP INDEX IF EXISTS match_changes_unpublished;
CREATE INDEX IF NOT EXISTS match_changes_unpublished_by_match
    ON match_changes (match_id, seq) WHERE published_at IS NULL;
