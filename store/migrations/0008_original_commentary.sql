-- 0008: what the original Live Score API's commentary bodies carry besides ours
-- (issue 12), kept as columns and returned: the period the event happened in
-- (its period number mapped onto our clock periods), the client's ordering
-- number, its tags, and the kind it sent when that kind is not one of ours.
-- REST scoring (PATCH /api/matches/{id}) audits as 'update'.

ALTER TABLE events ADD COLUMN IF NOT EXISTS period text
    CHECK (period IN ('1H', 'HT', '2H', 'ET', 'PEN', 'FT'));
ALTER TABLE events ADD COLUMN IF NOT EXISTS sequence integer CHECK (sequence >= 0);
ALTER TABLE events ADD COLUMN IF NOT EXISTS tags text[] NOT NULL DEFAULT '{}'
    CHECK (cardinality(tags) <= 20);
ALTER TABLE events ADD COLUMN IF NOT EXISTS original_type text
    CHECK (original_type IS NULL OR length(original_type) BETWEEN 1 AND 64);

ALTER TABLE override_audit DROP CONSTRAINT IF EXISTS override_audit_action_check;
ALTER TABLE override_audit ADD CONSTRAINT override_audit_action_check
    CHECK (action IN ('score', 'status', 'clear', 'update'));
