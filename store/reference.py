"""Competitions and teams: lookups by id or any known spelling, get-or-create
by name, aliases, listings."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from livescore.errors import Conflict, NotFound
from livescore.names import name_key
from store.db import Conn, atomic

_LOCK_NS = 7_101  # advisory-lock namespace for "create by name"

Kind = Literal["team", "competition"]
_TABLE = {"team": "teams", "competition": "competitions"}
_ALIASES = {
    "team": ("team_aliases", "team_id"),
    "competition": ("competition_aliases", "competition_id"),
}


def alias_keys(*names: str | None) -> list[str]:
    """The distinct name keys of the given spellings (blank ones skipped)."""
    keys: list[str] = []
    for name in names:
        if name and name.strip():
            key = name_key(name)
            if key not in keys:
                keys.append(key)
    return keys


async def find_ids(conn: Conn, kind: Kind, sport: str, keys: Iterable[str]) -> list[int]:
    """Ids of teams/competitions known under any of ``keys``."""
    table, column = _ALIASES[kind]
    cur = await conn.execute(
        f"SELECT DISTINCT {column} AS id FROM {table} "
        f"WHERE sport = %s AND alias_key = ANY(%s) ORDER BY 1",
        (sport, list(keys)),
    )
    return [int(row["id"]) for row in await cur.fetchall()]


async def in_country(conn: Conn, competition_ids: list[int], country: str) -> list[int]:
    """Those of ``competition_ids`` whose country is ``country`` (case-insensitive)."""
    cur = await conn.execute(
        "SELECT id FROM competitions WHERE id = ANY(%s) AND lower(country) = lower(%s)",
        (competition_ids, country),
    )
    return [int(r["id"]) for r in await cur.fetchall()]


async def add_aliases(conn: Conn, kind: Kind, sport: str, ident: int, *names: str | None) -> None:
    table, column = _ALIASES[kind]
    for key in alias_keys(*names):
        await conn.execute(
            f"INSERT INTO {table} (sport, alias_key, {column}) VALUES (%s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            (sport, key, ident),
        )


async def create(conn: Conn, kind: Kind, name: str, sport: str, **extra: Any) -> int:
    """Insert a team/competition and its aliases (name and short name)."""
    columns = ["sport", "name", "name_key", *extra]
    values = [sport, name.strip(), name_key(name), *extra.values()]
    cur = await conn.execute(
        f"INSERT INTO {_TABLE[kind]} ({', '.join(columns)}) "
        f"VALUES ({', '.join(['%s'] * len(values))}) RETURNING id",
        values,
    )
    row = await cur.fetchone()
    assert row is not None
    ident = int(row["id"])
    await add_aliases(conn, kind, sport, ident, name, extra.get("short_name"))
    return ident


async def lock_name(conn: Conn, sport: str, key: str) -> None:
    """Serialize creators of one name (call inside a transaction)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_NS, f"{sport}:{key}")
    )


async def get_or_create_team(
    conn: Conn,
    name: str,
    *,
    sport: str = "football",
    short_name: str | None = None,
    tla: str | None = None,
) -> int:
    """The id of the team known as ``name``, created if unknown.

    Raises ``Conflict`` when several teams are known under that name: the
    caller must pick one by id.
    """
    return await _get_or_create(conn, "team", name, sport, {"short_name": short_name, "tla": tla})


async def get_or_create_competition(
    conn: Conn, name: str, *, sport: str = "football", country: str | None = None
) -> int:
    return await _get_or_create(conn, "competition", name, sport, {"country": country})


async def _get_or_create(
    conn: Conn, kind: Kind, name: str, sport: str, extra: dict[str, Any]
) -> int:
    key = name_key(name)
    async with atomic(conn):
        await lock_name(conn, sport, key)
        ids = await find_ids(conn, kind, sport, [key])
        if len(ids) > 1:
            raise Conflict(
                f"{len(ids)} {_TABLE[kind]} are known as {name!r} (ids "
                f"{', '.join(map(str, ids))}); refer to one by id"
            )
        if ids:
            return ids[0]
        return await create(conn, kind, name, sport, **extra)


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
