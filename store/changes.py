"""The change log: reads for resume (``/changes?since=``) and the relay."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from store.db import CHANGES_CHANNEL, Conn, Cursor
from store.writes import Change

#: The columns of a change read back: the payload as its stored JSON text,
#: which is what gets published (``store.change_codec``).
_COLUMNS = "match_id, seq, type, payload::text AS payload_json, source, created_at"


def _change(row: dict[str, Any]) -> Change:
    created = row["created_at"]
    assert isinstance(created, datetime) or created is None
    text: bytes = row["payload_json"].encode()
    try:
        payload = orjson.loads(text)
    except orjson.JSONDecodeError:
        # deeper than any decoder goes (written before the write path's limits):
        # published as stored all the same; only readers of the dict see {}
        payload = {}
    return Change(
        match_id=int(row["match_id"]),
        seq=int(row["seq"]),
        type=str(row["type"]),
        payload=payload,
        source=row["source"],
        created_at=created,
        payload_json=text,
    )


async def changes_since(
    conn: Conn, match_id: int, since: int, *, limit: int = 1000
) -> list[Change]:
    """The ordered changes of a match with seq > ``since``."""
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM match_changes "
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
    Changes of held matches (``hold``) are left alone. Call inside a transaction.

    Ordered by (match, seq), not by ``created_at``: a replay records the
    recorded time, so ``created_at`` need not follow commit order, and a batch
    cut by ``limit`` must never hold a match's later seq without its earlier ones."""
    cur = await conn.execute(
        f"""SELECT {_COLUMNS} FROM match_changes
            WHERE published_at IS NULL
              AND match_id NOT IN (SELECT match_id FROM relay_held)
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


# -- held matches: a change the relay could not publish holds its match -------------


@dataclass(frozen=True, slots=True)
class Held:
    match_id: int
    seq: int
    reason: str
    held_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "matchId": self.match_id,
            "seq": self.seq,
            "reason": self.reason,
            "heldAt": self.held_at.isoformat(),
        }


async def hold(conn: Conn, match_id: int, seq: int, reason: str) -> None:
    """Stop publishing ``match_id`` at ``seq`` (its later changes wait behind it)."""
    await conn.execute(
        "INSERT INTO relay_held (match_id, seq, reason) VALUES (%s, %s, %s) "
        "ON CONFLICT (match_id) DO NOTHING",
        (match_id, seq, reason[:2000]),
    )


async def held(conn: Conn) -> list[Held]:
    return await _read_held(await _send_held(conn))


async def _send_held(conn: Conn) -> Cursor:
    return await conn.execute(
        "SELECT match_id, seq, reason, held_at FROM relay_held ORDER BY held_at, match_id"
    )


async def _read_held(cur: Cursor) -> list[Held]:
    return [Held(**row) for row in await cur.fetchall()]


async def release(conn: Conn, match_id: int) -> bool:
    """Let the relay try a held match again; False if it was not held."""
    cur = await conn.execute("DELETE FROM relay_held WHERE match_id = %s", (match_id,))
    if cur.rowcount:
        await conn.execute("SELECT pg_notify(%s, %s)", (CHANGES_CHANNEL, str(match_id)))
    return bool(cur.rowcount)


async def skip_unpublishable(conn: Conn, match_id: int, seq: int) -> bool:
    """Mark one change that cannot be published as published without publishing it
    on the bus; edge workers see the gap and read it from the change log instead.
    For operators only (``livescore relay release MATCH --skip SEQ``)."""
    cur = await conn.execute(
        "UPDATE match_changes SET published_at = now() "
        "WHERE match_id = %s AND seq = %s AND published_at IS NULL",
        (match_id, seq),
    )
    return bool(cur.rowcount)


@dataclass(frozen=True, slots=True)
class Backlog:
    """Unpublished changes of matches that are not held, and the oldest one's age."""

    count: int
    oldest_age_s: float | None
    held: list[Held]


async def backlog(conn: Conn) -> Backlog:
    return await read_backlog(await send_backlog(conn))


async def send_backlog(conn: Conn) -> tuple[Cursor, Cursor]:
    """``backlog``'s two statements (in pipeline mode: only sent); their answer
    is ``read_backlog``'s."""
    counted = await conn.execute(
        """SELECT count(*) AS n,
                  extract(epoch FROM now() - min(committed_at))::float8 AS age
             FROM match_changes
            WHERE published_at IS NULL
              AND match_id NOT IN (SELECT match_id FROM relay_held)"""
    )
    return counted, await _send_held(conn)


async def read_backlog(sent: tuple[Cursor, Cursor]) -> Backlog:
    counted, held_rows = sent
    row = await counted.fetchone()
    assert row is not None
    return Backlog(int(row["n"]), row["age"], await _read_held(held_rows))


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
