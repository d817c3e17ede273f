"""The few reads the WebSocket hub makes: snapshots, competitions and their
current matches. Match and change shapes come from ``store`` so a snapshot
is exactly what ``GET /api/matches/{id}`` serves."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from livescore.errors import NotFound
from livescore.model import IN_PLAY_STATUSES
from store.db import Conn
from store.shapes import MATCH_SELECT, match_json

#: A competition subscription covers its matches starting within this window
#: around now, plus every match in play whenever it started.
CURRENT_WINDOW = timedelta(hours=24)
#: At most this many matches come with one competition subscription.
COMPETITION_MATCH_CAP = 200


async def current_matches(conn: Conn, competition_id: int, now: datetime) -> list[dict[str, Any]]:
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
