-- 0011: a match's competition phase and group (issue 16: one table per group).
-- Two columns, not one: the stage is known without the group (API-Football
-- says "Group Stage - 3" but never the letter) and outside groups (league
-- seasons, knockout rounds), and the table splits on the group alone.
-- stage: our key of the feed's phase ("group_stage", "regular_season",
--        "last_16"; providers.parsing.stage_key), NULL when no feed said.
-- group_name: "Group A" (providers.parsing.group_label), NULL when no feed
--        said or the match is in no group. Filled by reconciliation (rule 10:
--        the most trusted feed that says it; a feed that does not never blanks it).
ALTER TABLE matches ADD COLUMN IF NOT EXISTS stage text
    CHECK (stage IS NULL OR length(stage) BETWEEN 1 AND 64);
ALTER TABLE matches ADD COLUMN IF NOT EXISTS group_name text
    CHECK (group_name IS NULL OR length(group_name) BETWEEN 1 AND 64);
