"""Match reads and creation. Every later change goes through
``store.writes.apply_change``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from livescore.errors import InvalidChange, NotFound
from livescore.model import IN_PLAY_STATUSES, MatchState, MatchStatus
from store.db import Conn
from store.shapes import MATCH_SELECT, match_json, state_from_row


@dataclass(frozen=True, slots=True)
class NewMatch:
    home_team_id: int
    away_team_id: int
    start_time: datetime
    sport: str = "football"
    competition_id: int | None = None
    end_time: datetime | None = None
    status: MatchStatus = MatchStatus.SCHEDULED
    #: the competition phase and group as the creating feed said (migration 0011)
    stage: str | None = None
    group: str | None = None


@dataclass(frozen=True, slots=True)
class MatchFilter:
    statuses: tuple[MatchStatus, ...] = ()
    competition_id: int | None = None
    team_id: int | None = None
    day: date | None = None


async def create_match(conn: Conn, new: NewMatch) -> dict[str, Any]:
    """Insert a match (seq 0, no change-log row) and return its public JSON."""
    if new.home_team_id == new.away_team_id:
        raise InvalidChange("a match needs two different teams")
    if new.end_time is not None and new.end_time <= new.start_time:
        raise InvalidChange("endTime must be after startTime")
    cur = await conn.execute(
        """INSERT INTO matches (sport, competition_id, home_team_id, away_team_id,
                                start_time, end_time, status, stage, group_name)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
        (
            new.sport,
            new.competition_id,
            new.home_team_id,
            new.away_team_id,
            new.start_time,
            new.end_time,
            new.status.value,
            new.stage,
            new.group,
        ),
    )
    row = await cur.fetchone()
    assert row is not None
    return await get_match(conn, int(row["id"]))


async def get_match(conn: Conn, match_id: int) -> dict[str, Any]:
    """One match's public JSON; NotFound if there is none."""
    cur = await conn.execute(MATCH_SELECT + " WHERE m.id = %s", (match_id,))
    row = await cur.fetchone()
    if row is None:
        raise NotFound("match", match_id)
    return match_json(row)


async def get_matches(conn: Conn, match_ids: list[int]) -> list[dict[str, Any]]:
    cur = await conn.execute(MATCH_SELECT + " WHERE m.id = ANY(%s) ORDER BY m.id", (match_ids,))
    return [match_json(row) for row in await cur.fetchall()]


async def list_matches(
    conn: Conn,
    flt: MatchFilter,
    *,
    limit: int,
    after: tuple[datetime, int] | None = None,
) -> tuple[list[dict[str, Any]], tuple[datetime, int] | None]:
    """A page of matches in (startTime, id) order after the keyset ``after``.

    Keyset pagination: rows inserted while a client pages never make it skip
    or repeat a row. Returns the page and the keyset of the next page (None
    at the end).
    """
    where: list[str] = []
    params: list[Any] = []
    if flt.statuses:
        where.append("m.status = ANY(%s)")
        params.append([s.value for s in flt.statuses])
    if flt.competition_id is not None:
        where.append("m.competition_id = %s")
        params.append(flt.competition_id)
    if flt.team_id is not None:
        where.append("(m.home_team_id = %s OR m.away_team_id = %s)")
        params += [flt.team_id, flt.team_id]
    if flt.day is not None:
        start = datetime.combine(flt.day, time.min).replace(tzinfo=UTC)
        where.append("m.start_time >= %s AND m.start_time < %s")
        params += [start, start + timedelta(days=1)]
    if after is not None:
        where.append("(m.start_time, m.id) > (%s, %s)")
        params += [after[0], after[1]]
    sql = MATCH_SELECT
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY m.start_time, m.id LIMIT %s"
    params.append(limit + 1)
    cur = await conn.execute(sql, params)
    rows = await cur.fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    next_key = (rows[-1]["start_time"], rows[-1]["id"]) if more and rows else None
    return [match_json(r) for r in rows], next_key


async def lock_state(conn: Conn, match_id: int) -> tuple[MatchState, datetime | None]:
    """Lock a match row for the calling transaction; its state and finish time."""
    cur = await conn.execute(MATCH_SELECT + " WHERE m.id = %s FOR UPDATE OF m", (match_id,))
    row = await cur.fetchone()
    if row is None:
        raise NotFound("match", match_id)
    return state_from_row(row), row["finished_at"]


async def lock_match(conn: Conn, match_id: int) -> None:
    """Lock a match row FOR UPDATE for the calling transaction (NotFound if none).

    Take it before inserting rows that reference the match (observations,
    events): each such insert takes a KEY SHARE lock on the match row through
    its foreign key, and two writers that both hold KEY SHARE and then ask for
    FOR UPDATE deadlock."""
    cur = await conn.execute("SELECT id FROM matches WHERE id = %s FOR UPDATE", (match_id,))
    if await cur.fetchone() is None:
        raise NotFound("match", match_id)


async def set_stale(conn: Conn, match_id: int, stale: bool) -> bool:
    """Flag (or unflag) a live match as stale; True when the flag changed."""
    cur = await conn.execute(
        "UPDATE matches SET stale = %s WHERE id = %s AND stale <> %s RETURNING id",
        (stale, match_id, stale),
    )
    return await cur.fetchone() is not None


#: A competition subscription covers its matches starting within this window
#: around now, plus every match in play whenever it started.
CURRENT_WINDOW = timedelta(hours=24)
#: At most this many matches come with one competition subscription.
COMPETITION_MATCH_CAP = 200


async def current_matches_of_competition(
    conn: Conn, competition_id: int, now: datetime
) -> list[dict[str, Any]]:
    """The competition's current matches (NotFound: no such competition)."""
    cur = await conn.execute("SELECT 1 FROM competitions WHERE id = %s", (competition_id,))
    if await cur.fetchone() is None:
        raise NotFound("competition", competition_id)
    cur = await conn.execute(
        MATCH_SELECT
        + """ WHERE m.competition_id = %s
              AND (m.start_time BETWEEN %s AND %s OR m.status = ANY(%s))
            ORDER BY m.start_time, m.id LIMIT %s""",
        (
            competition_id,
            now - CURRENT_WINDOW,
            now + CURRENT_WINDOW,
            [s.value for s in IN_PLAY_STATUSES],
            COMPETITION_MATCH_CAP,
        ),
    )
    return [match_json(row) for row in await cur.fetchall()]


async def competition_of(conn: Conn, match_id: int) -> int | None:
    """The competition of a match (None: none, or no such match)."""
    cur = await conn.execute("SELECT competition_id FROM matches WHERE id = %s", (match_id,))
    row = await cur.fetchone()
    return int(row["competition_id"]) if row and row["competition_id"] is not None else None


async def match_seq(conn: Conn, match_id: int) -> int:
    """A match's current seq (its last change); NotFound if there is none."""
    cur = await conn.execute("SELECT seq FROM matches WHERE id = %s", (match_id,))
    row = await cur.fetchone()
    if row is None:
        raise NotFound("match", match_id)
    return int(row["seq"])
