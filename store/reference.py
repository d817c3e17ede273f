"""Competitions and teams: lookups, get-or-create by name, listings."""

from __future__ import annotations

from typing import Any

from livescore.errors import Conflict, NotFound
from livescore.names import name_key
from store.db import Conn

_LOCK_NS = 7_101  # advisory-lock namespace for "create by name"


async def get_or_create_team(
    conn: Conn,
    name: str,
    *,
    sport: str = "football",
    short_name: str | None = None,
    tla: str | None = None,
) -> int:
    """The id of the team called ``name`` (by name key), created if unknown.

    Raises ``Conflict`` when several teams share the name key: the caller
    must pick one by id.
    """
    return await _get_or_create(conn, "teams", name, sport, {"short_name": short_name, "tla": tla})


async def get_or_create_competition(
    conn: Conn, name: str, *, sport: str = "football", country: str | None = None
) -> int:
    return await _get_or_create(conn, "competitions", name, sport, {"country": country})


async def _get_or_create(
    conn: Conn, table: str, name: str, sport: str, extra: dict[str, Any]
) -> int:
    key = name_key(name)
    async with conn.transaction():
        # serialize creators of the same name so two requests never make twins
        await conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_NS, key))
        cur = await conn.execute(
            f"SELECT id FROM {table} WHERE sport = %s AND name_key = %s ORDER BY id", (sport, key)
        )
        rows = await cur.fetchall()
        if len(rows) > 1:
            raise Conflict(
                f"{len(rows)} {table} are named like {name!r} (ids "
                f"{', '.join(str(r['id']) for r in rows)}); refer to one by id"
            )
        if rows:
            return int(rows[0]["id"])
        columns = ["sport", "name", "name_key", *extra]
        values = [sport, name.strip(), key, *extra.values()]
        cur = await conn.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) "
            f"VALUES ({', '.join(['%s'] * len(values))}) RETURNING id",
            values,
        )
        row = await cur.fetchone()
        assert row is not None
        return int(row["id"])


async def require(conn: Conn, table: str, ident: int) -> None:
    """Raise NotFound unless row ``ident`` exists in ``table`` (teams/competitions)."""
    assert table in {"teams", "competitions"}
    cur = await conn.execute(f"SELECT 1 FROM {table} WHERE id = %s", (ident,))
    if await cur.fetchone() is None:
        raise NotFound(table[:-1], ident)


async def list_competitions(conn: Conn) -> list[dict[str, Any]]:
    cur = await conn.execute(
        "SELECT id, sport, name, country FROM competitions ORDER BY sport, name, id"
    )
    return list(await cur.fetchall())


async def list_teams(conn: Conn, competition_id: int | None = None) -> list[dict[str, Any]]:
    if competition_id is None:
        cur = await conn.execute(
            'SELECT id, sport, name, short_name AS "shortName", tla FROM teams '
            "ORDER BY sport, name, id"
        )
    else:
        cur = await conn.execute(
            """SELECT DISTINCT t.id, t.sport, t.name, t.short_name AS "shortName", t.tla
                 FROM teams t JOIN matches m
                   ON t.id IN (m.home_team_id, m.away_team_id)
                WHERE m.competition_id = %s
                ORDER BY t.sport, t.name, t.id""",
            (competition_id,),
        )
    return list(await cur.fetchall())
