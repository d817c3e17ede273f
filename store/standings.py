"""What a league table is computed from: a competition's rules, its seasons and
the matches of one season (``livescore.standings`` does the computing), and the
last cross-check against each feed's own standings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from livescore.errors import NotFound
from livescore.model import MatchStatus
from livescore.standings import Result, Rules, Team, default_season, document, season_bounds
from store.db import Conn


@dataclass(frozen=True, slots=True)
class StandingsInput:
    competition: dict[str, Any]
    rules: Rules
    season: int
    seasons: list[int]
    results: list[Result]

    def document(self, *, live: bool) -> dict[str, Any]:
        """The standings as served (``livescore.standings.document``) from this input."""
        return document(
            self.competition, self.season, self.seasons, self.rules, self.results, live=live
        )


async def rules_of(conn: Conn, competition_id: int) -> tuple[dict[str, Any], Rules]:
    """The competition (id, name) and its table rules; NotFound if there is none."""
    cur = await conn.execute(
        """SELECT c.id, c.name, r.points_win, r.points_draw, r.points_loss,
                  r.season_start_month
             FROM competitions c LEFT JOIN standings_rules r ON r.competition_id = c.id
            WHERE c.id = %s""",
        (competition_id,),
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound("competition", competition_id)
    rules = Rules()
    if row["points_win"] is not None:
        rules = Rules(
            row["points_win"], row["points_draw"], row["points_loss"], row["season_start_month"]
        )
    return {"id": int(row["id"]), "name": row["name"]}, rules


async def own_rules(conn: Conn, competition_id: int) -> Rules | None:
    """The competition's own rules (None: it has none, the defaults apply)."""
    cur = await conn.execute(
        """SELECT points_win, points_draw, points_loss, season_start_month
             FROM standings_rules WHERE competition_id = %s""",
        (competition_id,),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return Rules(row["points_win"], row["points_draw"], row["points_loss"],
                 row["season_start_month"])  # fmt: skip


async def reset_rules(conn: Conn, competition_id: int) -> bool:
    """Drop the competition's own rules (the defaults apply again); False: it had none."""
    cur = await conn.execute(
        "DELETE FROM standings_rules WHERE competition_id = %s", (competition_id,)
    )
    return cur.rowcount > 0


async def set_rules(conn: Conn, competition_id: int, rules: Rules) -> None:
    """Give a competition its own points per result and season start month."""
    await conn.execute(
        """INSERT INTO standings_rules (competition_id, points_win, points_draw, points_loss,
                                        season_start_month)
           VALUES (%s, %s, %s, %s, %s)
           ON CONFLICT (competition_id) DO UPDATE SET
               points_win = EXCLUDED.points_win, points_draw = EXCLUDED.points_draw,
               points_loss = EXCLUDED.points_loss,
               season_start_month = EXCLUDED.season_start_month, updated_at = now()""",
        (competition_id, rules.win, rules.draw, rules.loss, rules.season_start_month),
    )


async def seasons_of(conn: Conn, competition_id: int, start_month: int) -> list[int]:
    """The seasons (start years) in which the competition has matches, ascending."""
    cur = await conn.execute(
        """SELECT DISTINCT
                  extract(year FROM start_time AT TIME ZONE 'UTC')::int
                  - (extract(month FROM start_time AT TIME ZONE 'UTC') < %s)::int AS season
             FROM matches WHERE competition_id = %s ORDER BY 1""",
        (start_month, competition_id),
    )
    return [int(row["season"]) for row in await cur.fetchall()]


async def season_results(
    conn: Conn, competition_id: int, season: int, start_month: int
) -> list[Result]:
    """Every match of the competition kicking off in the season, as the table needs it."""
    begin, end = season_bounds(season, start_month)
    cur = await conn.execute(
        """SELECT m.id, m.status, m.home_score, m.away_score, m.start_time, m.seq,
                  m.stage, m.group_name,
                  m.home_team_id, h.name AS home_name, m.away_team_id, a.name AS away_name
             FROM matches m
             JOIN teams h ON h.id = m.home_team_id
             JOIN teams a ON a.id = m.away_team_id
            WHERE m.competition_id = %s AND m.start_time >= %s AND m.start_time < %s
            ORDER BY m.start_time, m.id""",
        (competition_id, begin, end),
    )
    return [
        Result(
            match_id=int(row["id"]),
            home=Team(int(row["home_team_id"]), row["home_name"]),
            away=Team(int(row["away_team_id"]), row["away_name"]),
            status=MatchStatus(row["status"]),
            home_score=int(row["home_score"]),
            away_score=int(row["away_score"]),
            start_time=row["start_time"],
            seq=int(row["seq"]),
            group=row["group_name"],
            stage=row["stage"],
        )
        for row in await cur.fetchall()
    ]


async def standings_input(
    conn: Conn, competition_id: int, season: int | None, now: datetime
) -> StandingsInput:
    """Everything one table needs, in one transaction (NotFound: no such competition).
    ``season`` None: ``livescore.standings.default_season``."""
    async with conn.transaction():
        competition, rules = await rules_of(conn, competition_id)
        seasons = await seasons_of(conn, competition_id, rules.season_start_month)
        if season is None:
            season = default_season(seasons, now, rules.season_start_month)
        results = await season_results(conn, competition_id, season, rules.season_start_month)
    return StandingsInput(competition, rules, season, seasons, results)


async def match_place(conn: Conn, match_id: int) -> tuple[int | None, datetime | None]:
    """A match's competition and kickoff (None, None: no such match)."""
    cur = await conn.execute(
        "SELECT competition_id, start_time FROM matches WHERE id = %s", (match_id,)
    )
    row = await cur.fetchone()
    if row is None:
        return None, None
    competition = row["competition_id"]
    return (int(competition) if competition is not None else None), row["start_time"]


async def record_check(
    conn: Conn, competition_id: int, feed: str, season: int, disagreements: list[dict[str, Any]]
) -> None:
    """Keep the last cross-check of a competition's table against one feed."""
    await conn.execute(
        """INSERT INTO standings_checks (competition_id, feed, season, disagreements)
           VALUES (%s, %s, %s, %s)
           ON CONFLICT (competition_id, feed, season) DO UPDATE SET
               disagreements = EXCLUDED.disagreements, checked_at = now()""",
        (competition_id, feed, season, Jsonb(disagreements)),
    )


async def recent_checks(conn: Conn) -> list[dict[str, Any]]:
    """The last cross-check of every competition, season and feed, newest first."""
    cur = await conn.execute(
        """SELECT s.competition_id, c.name AS competition, s.feed, s.season, s.checked_at,
                  s.disagreements
             FROM standings_checks s JOIN competitions c ON c.id = s.competition_id
            ORDER BY s.checked_at DESC LIMIT 100"""
    )
    return [dict(row) for row in await cur.fetchall()]


async def crosswalked_competitions(conn: Conn, provider: str) -> list[tuple[str, int]]:
    """(provider id, our id) of every competition a provider has shown us."""
    cur = await conn.execute(
        "SELECT provider_id, competition_id FROM competition_crosswalk WHERE provider = %s "
        "ORDER BY competition_id",
        (provider,),
    )
    return [(row["provider_id"], int(row["competition_id"])) for row in await cur.fetchall()]


async def teams_of_provider(conn: Conn, provider: str, provider_ids: list[str]) -> dict[str, int]:
    """Our team ids of a provider's team ids (those the crosswalk knows)."""
    cur = await conn.execute(
        "SELECT provider_id, team_id FROM team_crosswalk "
        "WHERE provider = %s AND provider_id = ANY(%s)",
        (provider, provider_ids),
    )
    return {row["provider_id"]: int(row["team_id"]) for row in await cur.fetchall()}
