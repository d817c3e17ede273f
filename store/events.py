"""Commentary reads. Events are written only through ``apply_change``."""

from __future__ import annotations

from typing import Any

from store.db import Conn
from store.shapes import EVENT_SELECT, event_json


async def list_events(
    conn: Conn, match_id: int, *, limit: int, before: int | None = None
) -> list[dict[str, Any]]:
    """A match's events, newest first; ``before`` is an event id (exclusive)."""
    if before is None:
        cur = await conn.execute(
            EVENT_SELECT + " WHERE e.match_id = %s ORDER BY e.id DESC LIMIT %s",
            (match_id, limit),
        )
    else:
        cur = await conn.execute(
            EVENT_SELECT + " WHERE e.match_id = %s AND e.id < %s ORDER BY e.id DESC LIMIT %s",
            (match_id, before, limit),
        )
    return [event_json(row) for row in await cur.fetchall()]


async def event_keys(conn: Conn, match_id: int) -> list[dict[str, Any]]:
    """Existing events of a match as plain data (for reconciliation's dedupe)."""
    cur = await conn.execute(
        "SELECT event_key, type, side, minute, source, retracted, "
        "COALESCE(metadata->'shootout' = 'true'::jsonb, false) AS shootout FROM events "
        "WHERE match_id = %s ORDER BY id",
        (match_id,),
    )
    return list(await cur.fetchall())


async def get_event(conn: Conn, match_id: int, event_id: int) -> dict[str, Any] | None:
    """One event of a match as its public JSON plus ``shootout`` (None: the match has
    no event with that id)."""
    cur = await conn.execute(
        EVENT_SELECT + " WHERE e.match_id = %s AND e.id = %s", (match_id, event_id)
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return event_json(row) | {"shootout": row["metadata"].get("shootout") is True}
