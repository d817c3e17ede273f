"""Manual override audit trail and listing. Setting and clearing an override
goes through ``apply_change`` (it is published like any other change)."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from store.db import Conn


async def audit(
    conn: Conn,
    *,
    match_id: int,
    action: str,
    who: str,
    reason: str | None,
    old: dict[str, Any],
    new: dict[str, Any],
) -> None:
    await conn.execute(
        "INSERT INTO override_audit (match_id, action, who, reason, old, new) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        (match_id, action, who, reason, Jsonb(old), Jsonb(new)),
    )


async def list_active(conn: Conn) -> list[dict[str, Any]]:
    cur = await conn.execute(
        """SELECT o.match_id, o.status, o.home_score, o.away_score, o.who, o.reason, o.since,
                  ht.name AS home, at.name AS away, m.status AS match_status,
                  m.home_score AS match_home, m.away_score AS match_away
             FROM overrides o
             JOIN matches m ON m.id = o.match_id
             JOIN teams ht ON ht.id = m.home_team_id
             JOIN teams at ON at.id = m.away_team_id
            ORDER BY o.since, o.match_id"""
    )
    return list(await cur.fetchall())


async def audit_trail(conn: Conn, match_id: int) -> list[dict[str, Any]]:
    cur = await conn.execute(
        "SELECT action, who, reason, old, new, at FROM override_audit "
        "WHERE match_id = %s ORDER BY id",
        (match_id,),
    )
    return list(await cur.fetchall())
