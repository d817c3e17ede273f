-- 0007: when the current period's clock read its first minute (0, 45, 90,
-- 105), so clients can run the clock between reports (livescore.matchclock);
-- NULL while the clock is stopped. Written by the write path with the clock.
ALTER TABLE matches ADD COLUMN IF NOT EXISTS clock_started_at timestamptz;
