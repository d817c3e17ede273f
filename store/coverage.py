"""Which matches a feed covers, and which matches no feed covers (for the
poll cadence, the by-id fetch of vanished matches, stale sweeps and status
automation)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from store.db import Conn, Cursor

HOT = ["live", "halftime", "extra_time", "penalties", "suspended"]


async def feed_is_hot(conn: Conn, feed: str, now: datetime, soon: timedelta) -> bool:
    """True while a match this feed covers is in play or kicks off within ``soon``."""
    cur = await conn.execute(
        """SELECT EXISTS (
               SELECT 1 FROM matches m
                WHERE (m.status = ANY(%(hot)s)
                       OR (m.status = 'scheduled' AND m.start_time BETWEEN %(lo)s AND %(hi)s))
                  AND EXISTS (SELECT 1 FROM observations o
                               WHERE o.match_id = m.id AND o.feed = %(feed)s)
           ) AS hot""",
        {"hot": HOT, "lo": now - timedelta(hours=3), "hi": now + soon, "feed": feed},
    )
    row = await cur.fetchone()
    return bool(row and row["hot"])


async def in_play_of_feed(conn: Conn, feed: str) -> list[dict[str, Any]]:
    """Matches in play that ``feed`` covers, with the feed's id for each."""
    cur = await conn.execute(
        """SELECT m.id AS match_id, o.provider_match_id
             FROM matches m
             JOIN LATERAL (SELECT provider_match_id FROM observations
                            WHERE match_id = m.id AND feed = %(feed)s
                            ORDER BY observed_at DESC LIMIT 1) o ON true
            WHERE m.status = ANY(%(hot)s)
            ORDER BY m.id""",
        {"feed": feed, "hot": HOT},
    )
    return list(await cur.fetchall())


async def covered_hot_matches(conn: Conn) -> list[int]:
    """In-play matches that at least one feed covers (for the stale sweep)."""
    cur = await conn.execute(
        """SELECT m.id FROM matches m
            WHERE m.status = ANY(%s)
              AND EXISTS (SELECT 1 FROM observations o WHERE o.match_id = m.id)
            ORDER BY m.id""",
        (HOT,),
    )
    return [int(row["id"]) for row in await cur.fetchall()]


async def uncovered_due(conn: Conn, until: datetime) -> list[dict[str, Any]]:
    """Matches no feed covers whose automatic transition falls before ``until``:
    scheduled ones kicking off, live ones reaching half time or their end
    (``clock_period`` tells the halves apart). ``end_time``
    is null when the match has no explicit end (the caller adds the expected
    duration)."""
    cur = await conn.execute(
        """SELECT m.id, m.status, m.start_time, m.end_time, m.clock_period FROM matches m
            WHERE m.status IN ('scheduled', 'live', 'halftime', 'extra_time', 'penalties')
              AND m.start_time <= %(until)s
              AND NOT EXISTS (SELECT 1 FROM observations o WHERE o.match_id = m.id)
              AND NOT EXISTS (SELECT 1 FROM overrides v WHERE v.match_id = m.id)
              -- a scorer set its status over REST: the scorer runs it now
              AND m.status_source IS DISTINCT FROM 'api'
            ORDER BY m.start_time, m.id""",
        {"until": until},
    )
    return list(await cur.fetchall())


async def stale_count(conn: Conn) -> int:
    """In-play matches flagged stale (no fresh observation from any feed)."""
    return await read_stale_count(await send_stale_count(conn))


async def send_stale_count(conn: Conn) -> Cursor:
    """``stale_count``'s statement (in pipeline mode: only sent); its answer is
    ``read_stale_count``'s."""
    return await conn.execute(
        "SELECT count(*) AS n FROM matches WHERE stale AND status = ANY(%s)", (HOT,)
    )


async def read_stale_count(cur: Cursor) -> int:
    row = await cur.fetchone()
    return int(row["n"]) if row else 0


async def is_covered(conn: Conn, match_id: int) -> bool:
    """True when a feed covers the match (some feed has observed it). Ingestion
    locks the match before recording an observation, so under the match's row lock
    the answer cannot change."""
    cur = await conn.execute(
        "SELECT EXISTS (SELECT 1 FROM observations WHERE match_id = %s) AS covered",
        (match_id,),
    )
    row = await cur.fetchone()
    return bool(row and row["covered"])
