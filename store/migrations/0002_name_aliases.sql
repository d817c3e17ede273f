-- 0002: every spelling a team or competition was seen under, for entity
-- resolution ("Manchester United FC", "Man United" and "Manchester United"
-- are one team). alias_key is livescore.names.name_key() of the spelling.

CREATE TABLE team_aliases (
    sport      text NOT NULL,
    alias_key  text NOT NULL CHECK (alias_key <> ''),
    team_id    bigint NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    PRIMARY KEY (sport, alias_key, team_id)
);
CREATE INDEX team_aliases_team ON team_aliases (team_id);

CREATE TABLE competition_aliases (
    sport           text NOT NULL,
    alias_key       text NOT NULL CHECK (alias_key <> ''),
    competition_id  bigint NOT NULL REFERENCES competitions (id) ON DELETE CASCADE,
    PRIMARY KEY (sport, alias_key, competition_id)
);

-- every existing name is its own alias
INSERT INTO team_aliases (sport, alias_key, team_id)
    SELECT sport, name_key, id FROM teams ON CONFLICT DO NOTHING;
INSERT INTO competition_aliases (sport, alias_key, competition_id)
    SELECT sport, name_key, id FROM competitions ON CONFLICT DO NOTHING;
