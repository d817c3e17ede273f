"""What ``livescore status`` reads from PostgreSQL: each feed's observations of
the last hour, the matches in play (stale, overridden) and who leads the relay.

Redis-side readings (feed poll records, queue, heartbeats) are in
``livescore.feed_health`` and ``livescore.beats``; ``commands.status`` puts
them together and ``livescore.diagnosis`` judges them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from store.changes import RELAY_LOCK
from store.coverage import HOT
from store.db import Conn

#: How many stale match ids are listed by name.
STALE_LISTED = 10


@dataclass(frozen=True, slots=True)
class FeedActivity:
    """One feed's observations recorded in the window, and how many were rejected."""

    observations: int
    rejected: int


async def feed_activity(conn: Conn, *, window_s: float = 3600.0) -> dict[str, FeedActivity]:
    """Observations per feed recorded in the last ``window_s`` seconds
    (index ``observations_feed_created``)."""
    cur = await conn.execute(
        """SELECT feed, count(*) AS n, count(*) FILTER (WHERE outcome = 'rejected') AS rejected
             FROM observations
            WHERE created_at > now() - make_interval(secs => %s)
            GROUP BY feed""",
        (window_s,),
    )
    return {
        row["feed"]: FeedActivity(int(row["n"]), int(row["rejected"]))
        for row in await cur.fetchall()
    }


@dataclass(frozen=True, slots=True)
class MatchCounts:
    #: in play (live, halftime, extra time, penalties, suspended)
    live: int
    #: in play and flagged stale (no fresh observation from any feed)
    stale: int
    #: with an active manual override
    overridden: int
    stale_ids: list[int]


async def match_counts(conn: Conn) -> MatchCounts:
    cur = await conn.execute(
        """SELECT count(*) AS live, count(*) FILTER (WHERE stale) AS stale,
                  (SELECT count(*) FROM overrides) AS overridden
             FROM matches WHERE status = ANY(%s)""",
        (HOT,),
    )
    row = await cur.fetchone()
    assert row is not None
    ids = await conn.execute(
        "SELECT id FROM matches WHERE stale AND status = ANY(%s) ORDER BY id LIMIT %s",
        (HOT, STALE_LISTED),
    )
    return MatchCounts(
        int(row["live"]),
        int(row["stale"]),
        int(row["overridden"]),
        [int(r["id"]) for r in await ids.fetchall()],
    )


@dataclass(frozen=True, slots=True)
class RelayLeader:
    """The PostgreSQL session holding the relay's advisory lock."""

    pid: int
    client: str | None
    since: datetime | None


async def relay_leader(conn: Conn) -> RelayLeader | None:
    """Who holds the relay lock (``store.changes.try_lead_relay``); None: no relay leads."""
    cur = await conn.execute(
        """SELECT l.pid, a.client_addr::text AS client, a.backend_start
             FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.granted
              AND l.classid = %s AND l.objid = %s AND l.objsubid = 1
              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())""",
        ((RELAY_LOCK >> 32) & 0xFFFFFFFF, RELAY_LOCK & 0xFFFFFFFF),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return RelayLeader(int(row["pid"]), row["client"], row["backend_start"])
