"""Builders for the pipeline's integration tests: canonical observations,
provider-format payloads (football-data v4), and small read helpers.

Pure except the ``read`` helpers at the bottom, which query the store.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from livescore.model import (
    Breakdown,
    Clock,
    CompetitionRef,
    EventObservation,
    EventType,
    MatchObservation,
    MatchStatus,
    Period,
    ScoreLine,
    Side,
    TeamRef,
)
from livescore.names import name_key
from store.changes import changes_since
from store.db import Conn

KICKOFF = datetime(2026, 5, 1, 18, 0, tzinfo=UTC)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def team(provider: str, name: str, short: str | None = None) -> TeamRef:
    """A provider's team; its id is derived from the provider and the name."""
    return TeamRef(f"{provider}-{name_key(name).replace(' ', '-')}", name, short)


def obs(
    provider: str = "alpha",
    match_id: str = "m1",
    *,
    home: str = "Riverside FC",
    away: str = "Hilltop United",
    status: MatchStatus = MatchStatus.LIVE,
    score: tuple[int, int] | None = (0, 0),
    minute: int | None = None,
    start: datetime = KICKOFF,
    competition: CompetitionRef | None = None,
    events: tuple[EventObservation, ...] = (),
    events_complete: bool | None = None,
    half_time: tuple[int, int] | None = None,
    home_id: str | None = None,
    away_id: str | None = None,
) -> MatchObservation:
    """What provider ``provider`` says about its match ``match_id``."""
    home_ref = team(provider, home)
    away_ref = team(provider, away)
    if home_id is not None:
        home_ref = TeamRef(home_id, home)
    if away_id is not None:
        away_ref = TeamRef(away_id, away)
    clock = Clock()
    if minute is not None:
        clock = Clock(minute, None, Period.FIRST_HALF if minute <= 45 else Period.SECOND_HALF)
    return MatchObservation(
        provider=provider,
        provider_match_id=match_id,
        sport="football",
        competition=competition,
        home=home_ref,
        away=away_ref,
        start_time=start,
        status=status,
        provider_status=status.value.upper(),
        home_score=score[0] if score else None,
        away_score=score[1] if score else None,
        breakdown=Breakdown(half_time=ScoreLine(*half_time)) if half_time else Breakdown(),
        clock=clock,
        events=events,
        events_complete=bool(events) if events_complete is None else events_complete,
    )


def goal(
    key: str, side: Side = "home", minute: int = 10, *, retracted: bool = False
) -> EventObservation:
    return EventObservation(
        key=key,
        type=EventType.GOAL,
        minute=minute,
        side=side,
        actor=f"Scorer {key}",
        retracted=retracted,
    )


def var_check(key: str, minute: int, message: str) -> EventObservation:
    return EventObservation(key=key, type=EventType.VAR, minute=minute, message=message)


# -- football-data.org v4 payloads -----------------------------------------------------------

FD_STATUS = {
    MatchStatus.SCHEDULED: "TIMED",
    MatchStatus.LIVE: "IN_PLAY",
    MatchStatus.HALFTIME: "PAUSED",
    MatchStatus.FINISHED: "FINISHED",
    MatchStatus.POSTPONED: "POSTPONED",
}


def fd_match(
    match_id: int,
    home: tuple[int, str],
    away: tuple[int, str],
    *,
    status: MatchStatus = MatchStatus.SCHEDULED,
    score: tuple[int, int] | None = None,
    kickoff: datetime = KICKOFF,
    minute: int | None = None,
) -> dict[str, Any]:
    """One match object as football-data.org v4 sends it."""
    full = {"home": score[0], "away": score[1]} if score else {"home": None, "away": None}
    match: dict[str, Any] = {
        "area": {"id": 2072, "name": "England", "code": "ENG"},
        "competition": {"id": 2021, "name": "Premier League", "code": "PL", "type": "LEAGUE"},
        "id": match_id,
        "utcDate": kickoff.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "status": FD_STATUS[status],
        "matchday": 6,
        "stage": "REGULAR_SEASON",
        "homeTeam": {"id": home[0], "name": home[1], "shortName": home[1], "tla": None},
        "awayTeam": {"id": away[0], "name": away[1], "shortName": away[1], "tla": None},
        "score": {
            "winner": None,
            "duration": "REGULAR",
            "fullTime": full,
            "halfTime": {"home": None, "away": None},
        },
    }
    if minute is not None:
        match["minute"] = minute
    return match


def fd_list(*matches: dict[str, Any]) -> str:
    """A ``GET /v4/matches`` body."""
    return orjson.dumps({"resultSet": {"count": len(matches)}, "matches": list(matches)}).decode()


def fd_one(match: dict[str, Any]) -> str:
    """A ``GET /v4/matches/{id}`` body (the match object itself)."""
    return orjson.dumps(match).decode()


# -- reads -----------------------------------------------------------------------------------


async def change_log(conn: Conn, match_id: int) -> list[tuple[int, str]]:
    return [(c.seq, c.type) for c in await changes_since(conn, match_id, 0)]


async def observation_rows(conn: Conn, feed: str | None = None) -> list[dict[str, Any]]:
    sql = (
        "SELECT id, feed, provider_match_id, match_id, fingerprint, observed_at, status, "
        "home_score, away_score, outcome, reason FROM observations"
    )
    params: tuple[Any, ...] = ()
    if feed is not None:
        sql += " WHERE feed = %s"
        params = (feed,)
    cur = await conn.execute(sql + " ORDER BY id", params)
    return list(await cur.fetchall())


async def match_ids(conn: Conn) -> list[int]:
    cur = await conn.execute("SELECT id FROM matches ORDER BY id")
    return [int(r["id"]) for r in await cur.fetchall()]


async def assert_seqs_gap_free(conn: Conn) -> dict[int, int]:
    """Every match's change log is 1..seq with no gap, and the row's seq is its end.
    Returns match id -> seq."""
    cur = await conn.execute(
        """SELECT m.id, m.seq, COALESCE(array_agg(c.seq ORDER BY c.seq)
                  FILTER (WHERE c.seq IS NOT NULL), '{}') AS seqs
             FROM matches m LEFT JOIN match_changes c ON c.match_id = m.id
            GROUP BY m.id ORDER BY m.id"""
    )
    out: dict[int, int] = {}
    for row in await cur.fetchall():
        assert list(row["seqs"]) == list(range(1, row["seq"] + 1)), row
        out[int(row["id"])] = int(row["seq"])
    return out
