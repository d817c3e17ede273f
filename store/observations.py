"""Per-provider observations: what each feed said about each match, once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from store.db import Conn


async def record(
    conn: Conn,
    *,
    feed: str,
    provider_match_id: str,
    match_id: int | None,
    fingerprint: str,
    observed_at: datetime,
    status: str,
    home_score: int | None,
    away_score: int | None,
    payload: dict[str, Any],
) -> int | None:
    """Insert an observation; None when this feed already said exactly this
    about this match (the fingerprint's unique key makes re-polling a no-op)."""
    cur = await conn.execute(
        """INSERT INTO observations (feed, provider_match_id, match_id, fingerprint,
                                     observed_at, status, home_score, away_score, payload)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (feed, provider_match_id, fingerprint) DO NOTHING
           RETURNING id""",
        (
            feed, provider_match_id, match_id, fingerprint, observed_at, status,
            home_score, away_score, Jsonb(payload),
        ),
    )  # fmt: skip
    row = await cur.fetchone()
    return int(row["id"]) if row else None


async def set_outcome(conn: Conn, observation_id: int, outcome: str, reason: str | None) -> None:
    await conn.execute(
        "UPDATE observations SET outcome = %s, reason = %s WHERE id = %s",
        (outcome, reason, observation_id),
    )


async def latest_per_feed(conn: Conn, match_id: int) -> list[dict[str, Any]]:
    """The newest observation of each feed covering a match, however old."""
    cur = await conn.execute(
        """SELECT DISTINCT ON (feed) id, feed, observed_at, payload
             FROM observations
            WHERE match_id = %s
            ORDER BY feed, observed_at DESC, id DESC""",
        (match_id,),
    )
    return list(await cur.fetchall())


async def touch(
    conn: Conn,
    feed: str,
    provider_match_id: str,
    fingerprint: str,
    at: datetime,
    match_id: int | None = None,
) -> None:
    """An unchanged observation seen again: it is still fresh. One recorded
    before its match was known (ambiguous, then linked by an operator) now
    belongs to ``match_id``, so reconciliation sees it."""
    await conn.execute(
        "UPDATE observations SET observed_at = GREATEST(observed_at, %s), "
        "match_id = COALESCE(match_id, %s) "
        "WHERE feed = %s AND provider_match_id = %s AND fingerprint = %s",
        (at, match_id, feed, provider_match_id, fingerprint),
    )


async def touch_latest(conn: Conn, feed: str, provider_match_ids: list[str], at: datetime) -> None:
    """A feed's unchanged response seen again: the newest observation of each
    of its matches in it is still fresh as of ``at``."""
    await conn.execute(
        """UPDATE observations o SET observed_at = %s
             FROM (SELECT DISTINCT ON (provider_match_id) id FROM observations
                    WHERE feed = %s AND provider_match_id = ANY(%s)
                    ORDER BY provider_match_id, observed_at DESC, id DESC) latest
            WHERE o.id = latest.id AND o.observed_at < %s""",
        (at, feed, provider_match_ids, at),
    )
