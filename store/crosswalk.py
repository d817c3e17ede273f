"""Provider crosswalks: (provider, provider id) -> one canonical id."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from livescore.errors import Conflict, NotFound
from store.db import Conn

Entity = Literal["match", "team", "competition"]
_CANONICAL = {"match": "matches", "team": "teams", "competition": "competitions"}
_TABLES = {
    "match": ("match_crosswalk", "match_id"),
    "team": ("team_crosswalk", "team_id"),
    "competition": ("competition_crosswalk", "competition_id"),
}


#: advisory-lock key of the slow path of entity resolution (match by names, or create)
_RESOLVE_LOCK = (7_102, 0)


async def lock_resolution(conn: Conn) -> None:
    """Serialize the slow path of entity resolution for the calling transaction,
    so two workers never create the same match twice."""
    await conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", _RESOLVE_LOCK)


async def lookup(conn: Conn, entity: Entity, provider: str, provider_id: str) -> int | None:
    table, column = _TABLES[entity]
    cur = await conn.execute(
        f"SELECT {column} AS id FROM {table} WHERE provider = %s AND provider_id = %s",
        (provider, provider_id),
    )
    row = await cur.fetchone()
    return int(row["id"]) if row else None


async def link(
    conn: Conn,
    entity: Entity,
    provider: str,
    provider_id: str,
    canonical_id: int,
    provider_name: str | None = None,
) -> int:
    """Record provider_id -> canonical_id; returns the id the crosswalk holds
    (an existing link wins over a racing writer's)."""
    table, column = _TABLES[entity]
    if entity == "match":
        await conn.execute(
            f"INSERT INTO {table} (provider, provider_id, {column}) VALUES (%s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            (provider, provider_id, canonical_id),
        )
    else:
        await conn.execute(
            f"INSERT INTO {table} (provider, provider_id, {column}, provider_name) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (provider, provider_id, canonical_id, provider_name),
        )
    found = await lookup(conn, entity, provider, provider_id)
    assert found is not None
    return found


async def relink(
    conn: Conn, entity: Entity, provider: str, provider_id: str, canonical_id: int
) -> int | None:
    """An operator's link: point (provider, provider_id) at ``canonical_id``,
    replacing any earlier link of that id. Returns the previous canonical id.

    Raises NotFound for an unknown canonical row and Conflict when a match is
    already linked to another id of the same provider."""
    table = _TABLES[entity][0]
    cur = await conn.execute(f"SELECT 1 FROM {_CANONICAL[entity]} WHERE id = %s", (canonical_id,))
    if await cur.fetchone() is None:
        raise NotFound(entity, canonical_id)
    previous = await lookup(conn, entity, provider, provider_id)
    if entity == "match":
        cur = await conn.execute(
            "SELECT provider_id FROM match_crosswalk WHERE provider = %s AND match_id = %s "
            "AND provider_id <> %s",
            (provider, canonical_id, provider_id),
        )
        other = await cur.fetchone()
        if other is not None:
            raise Conflict(
                f"match {canonical_id} is already {provider} match {other['provider_id']}; "
                "one match has one id per provider"
            )
    await conn.execute(
        f"DELETE FROM {table} WHERE provider = %s AND provider_id = %s", (provider, provider_id)
    )
    await link(conn, entity, provider, provider_id, canonical_id)
    return previous


async def provider_ids_of_match(conn: Conn, match_id: int) -> dict[str, str]:
    cur = await conn.execute(
        "SELECT provider, provider_id FROM match_crosswalk WHERE match_id = %s", (match_id,)
    )
    return {row["provider"]: row["provider_id"] for row in await cur.fetchall()}


async def candidate_matches(
    conn: Conn,
    *,
    provider: str,
    start_time: datetime,
    window: timedelta,
    competition_id: int | None,
) -> list[dict[str, Any]]:
    """Matches that may be the one a provider describes: kickoff within
    ``window``, same competition when both are known, and not already linked
    to another id of the same provider. Each row has the match id, both team
    ids and every alias key of each team."""
    cur = await conn.execute(
        """SELECT m.id, m.home_team_id, m.away_team_id,
                  ARRAY(SELECT alias_key FROM team_aliases WHERE team_id = m.home_team_id)
                      AS home_keys,
                  ARRAY(SELECT alias_key FROM team_aliases WHERE team_id = m.away_team_id)
                      AS away_keys
             FROM matches m
            WHERE m.start_time BETWEEN %(lo)s AND %(hi)s
              AND (%(comp)s::bigint IS NULL OR m.competition_id IS NULL
                   OR m.competition_id = %(comp)s)
              AND NOT EXISTS (SELECT 1 FROM match_crosswalk x
                               WHERE x.match_id = m.id AND x.provider = %(provider)s)
            ORDER BY m.id""",
        {
            "lo": start_time - window,
            "hi": start_time + window,
            "comp": competition_id,
            "provider": provider,
        },
    )
    return list(await cur.fetchall())
