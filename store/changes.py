"""The change log: reads for resume (``/changes?since=``) and the relay."""

from __future__ import annotations

from datetime import datetime

from store.db import CHANGES_CHANNEL, Conn
from store.writes import Change


def _change(row: dict[str, object]) -> Change:
    created = row["created_at"]
    assert isinstance(created, datetime) or created is None
    return Change(
        match_id=int(row["match_id"]),  # type: ignore[call-overload]
        seq=int(row["seq"]),  # type: ignore[call-overload]
        type=str(row["type"]),
        payload=row["payload"],  # type: ignore[arg-type]
        source=row["source"],  # type: ignore[arg-type]
        created_at=created,
    )


async def changes_since(
    conn: Conn, match_id: int, since: int, *, limit: int = 1000
) -> list[Change]:
    """The ordered changes of a match with seq > ``since``."""
    cur = await conn.execute(
        "SELECT match_id, seq, type, payload, source, created_at FROM match_changes "
        "WHERE match_id = %s AND seq > %s ORDER BY seq LIMIT %s",
        (match_id, since, limit),
    )
    return [_change(row) for row in await cur.fetchall()]


async def oldest_kept_seq(conn: Conn, match_id: int) -> int | None:
    """The lowest seq still in the log for a match (None: nothing kept)."""
    cur = await conn.execute(
        "SELECT min(seq) AS s FROM match_changes WHERE match_id = %s", (match_id,)
    )
    row = await cur.fetchone()
    return int(row["s"]) if row and row["s"] is not None else None


async def claim_unpublished(conn: Conn, *, limit: int = 500) -> list[Change]:
    """Unpublished changes in seq order per match, locked (SKIP LOCKED) for the
    calling transaction so two relays never publish the same rows at once.
    Call inside a transaction.

    Ordered by (match, seq), not by ``created_at``: a replay records the
    recorded time, so ``created_at`` need not follow commit order, and a batch
    cut by ``limit`` must never hold a match's later seq without its earlier ones."""
    cur = await conn.execute(
        """SELECT match_id, seq, type, payload, source, created_at FROM match_changes
            WHERE published_at IS NULL
            ORDER BY match_id, seq
            LIMIT %s
            FOR UPDATE SKIP LOCKED""",
        (limit,),
    )
    return [_change(row) for row in await cur.fetchall()]


async def mark_published(conn: Conn, changes: list[Change], at: datetime) -> None:
    if not changes:
        return
    await conn.execute(
        """UPDATE match_changes SET published_at = %s
            WHERE (match_id, seq) IN (SELECT * FROM unnest(%s::bigint[], %s::bigint[]))""",
        (at, [c.match_id for c in changes], [c.seq for c in changes]),
    )


#: advisory lock id the leading relay holds for its session
RELAY_LOCK = 0x52454C59  # "RELY"


async def try_lead_relay(conn: Conn) -> bool:
    """Take the relay's session lock on ``conn``; False if another relay holds it.
    Held until ``conn`` closes."""
    cur = await conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (RELAY_LOCK,))
    row = await cur.fetchone()
    return bool(row and row["ok"])


async def listen_for_changes(conn: Conn) -> None:
    """Have ``conn`` receive the write path's commit notifications."""
    await conn.execute(f"LISTEN {CHANGES_CHANNEL}")
