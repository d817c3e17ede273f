-- 0001: the canonical model (CONTRACT.md section 3).
-- Constraints do the guarding: foreign keys, checks on statuses and scores,
-- unique keys that make ingestion idempotent.

CREATE TABLE competitions (
    id          bigserial PRIMARY KEY,
    sport       text NOT NULL DEFAULT 'football' CHECK (sport ~ '^[a-z][a-z0-9_-]{0,31}$'),
    name        text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    -- lower-cased, accents and punctuation folded: the key names resolve by
    name_key    text NOT NULL CHECK (name_key <> ''),
    country     text CHECK (country IS NULL OR length(country) <= 100),
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- names are not unique (two "Premier League"s exist); resolution reports ambiguity
CREATE INDEX competitions_name_key ON competitions (sport, name_key);

CREATE TABLE teams (
    id          bigserial PRIMARY KEY,
    sport       text NOT NULL DEFAULT 'football' CHECK (sport ~ '^[a-z][a-z0-9_-]{0,31}$'),
    name        text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    name_key    text NOT NULL CHECK (name_key <> ''),
    short_name  text CHECK (short_name IS NULL OR length(short_name) <= 100),
    tla         text CHECK (tla IS NULL OR length(tla) <= 8),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX teams_name_key ON teams (sport, name_key);

CREATE TABLE matches (
    id              bigserial PRIMARY KEY,
    sport           text NOT NULL DEFAULT 'football' CHECK (sport ~ '^[a-z][a-z0-9_-]{0,31}$'),
    competition_id  bigint REFERENCES competitions (id),
    home_team_id    bigint NOT NULL REFERENCES teams (id),
    away_team_id    bigint NOT NULL REFERENCES teams (id),
    start_time      timestamptz NOT NULL,
    -- expected end for matches without provider coverage (status automation)
    end_time        timestamptz,
    status          text NOT NULL DEFAULT 'scheduled' CHECK (status IN (
                        'scheduled', 'live', 'halftime', 'extra_time', 'penalties',
                        'finished', 'postponed', 'suspended', 'cancelled', 'abandoned')),
    home_score      integer NOT NULL DEFAULT 0 CHECK (home_score BETWEEN 0 AND 999),
    away_score      integer NOT NULL DEFAULT 0 CHECK (away_score BETWEEN 0 AND 999),
    -- {"halfTime": {"home", "away"} | null, "regularTime", "extraTime", "penalties"}
    breakdown       jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(breakdown) = 'object'),
    clock_minute    integer CHECK (clock_minute BETWEEN 0 AND 200),
    clock_added     integer CHECK (clock_added BETWEEN 0 AND 60),
    clock_period    text CHECK (clock_period IN ('1H', 'HT', '2H', 'ET', 'PEN', 'FT')),
    stats           jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(stats) = 'object'),
    -- per-match change counter: the seq of the last change-log row
    seq             bigint NOT NULL DEFAULT 0 CHECK (seq >= 0),
    -- which source last set the score / the status (feed name, 'override', 'api', 'automation')
    score_source    text,
    status_source   text,
    -- when status became 'finished' (the corrections window counts from here)
    finished_at     timestamptz,
    -- when a live match last got a fresh provider observation; null: never
    observed_at     timestamptz,
    stale           boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (home_team_id <> away_team_id),
    CHECK (end_time IS NULL OR end_time > start_time)
);

-- cursor pagination walks (start_time, id); filters use the others
CREATE INDEX matches_start_id ON matches (start_time, id);
CREATE INDEX matches_status ON matches (status) WHERE status IN ('live', 'halftime', 'extra_time', 'penalties');
CREATE INDEX matches_competition ON matches (competition_id, start_time);
CREATE INDEX matches_home ON matches (home_team_id, start_time);
CREATE INDEX matches_away ON matches (away_team_id, start_time);

-- The per-match change log: every applied change, numbered in the same
-- transaction that changes the match. The relay publishes rows whose
-- published_at is null, in seq order per match.
CREATE TABLE match_changes (
    match_id     bigint NOT NULL REFERENCES matches (id) ON DELETE CASCADE,
    seq          bigint NOT NULL CHECK (seq >= 1),
    type         text NOT NULL CHECK (type IN (
                     'score:update', 'commentary:new', 'commentary:update',
                     'match:status', 'match:update')),
    payload      jsonb NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
    source       text,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    published_at timestamptz,
    PRIMARY KEY (match_id, seq)
);
CREATE INDEX match_changes_unpublished ON match_changes (created_at, match_id, seq)
    WHERE published_at IS NULL;

CREATE TABLE events (
    id          bigserial PRIMARY KEY,
    match_id    bigint NOT NULL REFERENCES matches (id) ON DELETE CASCADE,
    -- the change-log seq that added this event
    seq         bigint NOT NULL CHECK (seq >= 1),
    -- stable per-provider key (provider event id or deterministic key); null for API events
    event_key   text CHECK (event_key IS NULL OR length(event_key) BETWEEN 1 AND 300),
    source      text,
    type        text NOT NULL CHECK (type IN (
                    'goal', 'own_goal', 'penalty_goal', 'missed_penalty', 'yellow',
                    'second_yellow', 'red', 'substitution', 'var', 'period_start',
                    'period_end', 'text')),
    minute      integer CHECK (minute BETWEEN 0 AND 200),
    added_time  integer CHECK (added_time BETWEEN 0 AND 60),
    side        text CHECK (side IN ('home', 'away')),
    team_id     bigint REFERENCES teams (id),
    actor       text CHECK (actor IS NULL OR length(actor) <= 200),
    message     text CHECK (message IS NULL OR length(message) <= 2000),
    metadata    jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
    retracted   boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (match_id, event_key)
);
CREATE INDEX events_match_newest ON events (match_id, id DESC);

-- Provider crosswalks: provider + provider id -> one canonical id.
CREATE TABLE competition_crosswalk (
    provider        text NOT NULL,
    provider_id     text NOT NULL,
    competition_id  bigint NOT NULL REFERENCES competitions (id) ON DELETE CASCADE,
    provider_name   text,
    PRIMARY KEY (provider, provider_id)
);
CREATE TABLE team_crosswalk (
    provider        text NOT NULL,
    provider_id     text NOT NULL,
    team_id         bigint NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    provider_name   text,
    PRIMARY KEY (provider, provider_id)
);
CREATE TABLE match_crosswalk (
    provider        text NOT NULL,
    provider_id     text NOT NULL,
    match_id        bigint NOT NULL REFERENCES matches (id) ON DELETE CASCADE,
    PRIMARY KEY (provider, provider_id),
    -- one provider id per match per provider
    UNIQUE (provider, match_id)
);

-- Operator-configured feeds. Secrets are never stored: secret_env names the
-- environment variable that holds one.
CREATE TABLE feeds (
    name             text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
    kind             text NOT NULL CHECK (kind IN (
                         'football-data', 'api-football', 'espn', 'thesportsdb', 'fixture')),
    base_url         text,
    secret_env       text CHECK (secret_env IS NULL OR secret_env ~ '^[A-Z_][A-Z0-9_]*$'),
    priority         integer NOT NULL DEFAULT 100 CHECK (priority BETWEEN 1 AND 1000),
    competitions     text[] NOT NULL DEFAULT '{}',
    poll_live_s      real NOT NULL DEFAULT 15 CHECK (poll_live_s >= 1),
    poll_idle_s      real NOT NULL DEFAULT 600 CHECK (poll_idle_s >= poll_live_s),
    budget_per_minute integer CHECK (budget_per_minute IS NULL OR budget_per_minute >= 1),
    enabled          boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Per-provider observations: what each feed said about each match, once.
-- The fingerprint (hash of the normalized observation) makes re-polling the
-- same data a no-op.
CREATE TABLE observations (
    id                bigserial PRIMARY KEY,
    feed              text NOT NULL,
    provider_match_id text NOT NULL,
    match_id          bigint REFERENCES matches (id) ON DELETE CASCADE,
    fingerprint       text NOT NULL,
    observed_at       timestamptz NOT NULL,
    status            text NOT NULL,
    home_score        integer,
    away_score        integer,
    payload           jsonb NOT NULL,
    -- applied: changed the match; ignored: nothing new; rejected: see reason
    outcome           text NOT NULL DEFAULT 'pending' CHECK (outcome IN (
                          'pending', 'applied', 'ignored', 'rejected')),
    reason            text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (feed, provider_match_id, fingerprint)
);
CREATE INDEX observations_latest ON observations (match_id, feed, observed_at DESC);

-- Active manual overrides (one per match) and their audit trail.
CREATE TABLE overrides (
    match_id    bigint PRIMARY KEY REFERENCES matches (id) ON DELETE CASCADE,
    status      text CHECK (status IN (
                    'scheduled', 'live', 'halftime', 'extra_time', 'penalties',
                    'finished', 'postponed', 'suspended', 'cancelled', 'abandoned')),
    home_score  integer CHECK (home_score BETWEEN 0 AND 999),
    away_score  integer CHECK (away_score BETWEEN 0 AND 999),
    who         text NOT NULL CHECK (who <> ''),
    reason      text NOT NULL CHECK (length(btrim(reason)) > 0),
    since       timestamptz NOT NULL DEFAULT now(),
    CHECK ((home_score IS NULL) = (away_score IS NULL)),
    CHECK (status IS NOT NULL OR home_score IS NOT NULL)
);
CREATE TABLE override_audit (
    id          bigserial PRIMARY KEY,
    match_id    bigint NOT NULL REFERENCES matches (id) ON DELETE CASCADE,
    action      text NOT NULL CHECK (action IN ('score', 'status', 'clear')),
    who         text NOT NULL,
    reason      text,
    old         jsonb NOT NULL,
    new         jsonb NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX override_audit_match ON override_audit (match_id, at);

-- API keys: only a SHA-256 hash of the key is stored; the key is shown once.
CREATE TABLE api_keys (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    key_hash    text NOT NULL UNIQUE CHECK (length(key_hash) = 64),
    prefix      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
