-- 0009: signed webhooks (issue 13). An endpoint names the change types it
-- wants, optionally narrowed to matches or competitions, and the environment
-- variable holding its whsec_ secret (never the secret itself). The relay adds
-- one delivery per matching change and endpoint in the transaction that
-- publishes the change; `livescore worker` sends them (pipeline/webhooks.py).
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    id               bigserial PRIMARY KEY,
    name             text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
    url              text NOT NULL CHECK (url ~* '^https?://[^/?#[:space:]]+' AND length(url) <= 2000),
    events           text[] NOT NULL CHECK (cardinality(events) > 0),
    -- empty: every match; at most one of the two is set
    match_ids        bigint[] NOT NULL DEFAULT '{}',
    competition_ids  bigint[] NOT NULL DEFAULT '{}',
    secret_env       text NOT NULL CHECK (secret_env ~ '^[A-Z_][A-Z0-9_]*$'),
    enabled          boolean NOT NULL DEFAULT true,
    -- why it was disabled (by an operator, or a receiver's 410 Gone)
    disabled_reason  text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (match_ids = '{}' OR competition_ids = '{}')
);

-- One row per change and endpoint (and per `webhooks test`). Pending rows of
-- one endpoint and match go out in seq order: the lowest pending seq holds the
-- later ones. The body is the change's message as published, kept here so a
-- redelivery sends the same bytes whatever happens to the change log.
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id               bigserial PRIMARY KEY,
    endpoint_id      bigint NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    -- the webhook-id header: stable per change and endpoint
    message_id       text NOT NULL,
    type             text NOT NULL,
    match_id         bigint,
    seq              bigint,
    body             bytea NOT NULL,
    state            text NOT NULL DEFAULT 'pending'
                         CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- the retry schedule counts from here (creation, or the last redelivery)
    scheduled_from   timestamptz NOT NULL DEFAULT now(),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_attempt_at  timestamptz,
    last_status      integer,
    last_error       text,
    delivered_at     timestamptz,
    dead_at          timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (endpoint_id, message_id),
    CHECK ((match_id IS NULL) = (seq IS NULL))
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_pending
    ON webhook_deliveries (endpoint_id, match_id, seq) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS webhook_deliveries_recent
    ON webhook_deliveries (endpoint_id, id DESC);
