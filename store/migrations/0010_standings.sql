-- 0010: standings (issue 16). Tables are computed from our own results
-- (livescore/standings.py); a competition may have its own points per result
-- and season start month (defaults 3/1/0 and July when it has no row here).
CREATE TABLE IF NOT EXISTS standings_rules (
    competition_id      bigint PRIMARY KEY REFERENCES competitions (id) ON DELETE CASCADE,
    points_win          integer NOT NULL DEFAULT 3 CHECK (points_win BETWEEN 0 AND 100),
    points_draw         integer NOT NULL DEFAULT 1 CHECK (points_draw BETWEEN 0 AND 100),
    points_loss         integer NOT NULL DEFAULT 0 CHECK (points_loss BETWEEN -100 AND 100),
    season_start_month  integer NOT NULL DEFAULT 7 CHECK (season_start_month BETWEEN 1 AND 12),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- The last cross-check of our table against a feed's own standings: what
-- disagreed (never applied to ours), for the logs and `livescore status`.
CREATE TABLE IF NOT EXISTS standings_checks (
    competition_id  bigint NOT NULL REFERENCES competitions (id) ON DELETE CASCADE,
    feed            text NOT NULL,
    season          integer NOT NULL,
    checked_at      timestamptz NOT NULL DEFAULT now(),
    -- [{"team", "field", "ours", "theirs"}, ...]; empty: they agree
    disagreements   jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(disagreements) = 'array'),
    PRIMARY KEY (competition_id, feed, season)
);
