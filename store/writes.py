"""The single write path: every change to a match goes through ``apply_change``.

In ONE transaction it locks the match row (``SELECT ... FOR UPDATE``, so
concurrent writers on one match queue up instead of losing updates),
computes what the patch really changes (``store.write_plan.plan``, a pure
function of the state and the patch), takes the match's next ``seq`` for
each change, updates the row, appends the change-log rows and signals the
relay with ``NOTIFY`` (delivered at commit). A patch that changes nothing
writes nothing and consumes no seq.

Ingestion, overrides, API writes and status automation all call it.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from livescore import clock
from livescore.errors import InvalidChange, NotFound
from livescore.model import (
    MatchPatch,
    MatchState,
    NewEvent,
    OverrideInfo,
)
from store import change_codec
from store.db import CHANGES_CHANNEL, Conn, atomic
from store.shapes import EVENT_SELECT, MATCH_SELECT, event_json, state_from_row
from store.write_plan import plan

PatchFn = Callable[[MatchState], "MatchPatch | Awaitable[MatchPatch | None] | None"]


@dataclass(frozen=True, slots=True)
class Change:
    """One change-log row as written (what the relay publishes)."""

    match_id: int
    seq: int
    type: str
    payload: dict[str, Any]
    source: str | None
    created_at: datetime | None = None
    #: the payload's JSON text as stored, when read back from the change log:
    #: what ``store.change_codec`` publishes (never decoded and re-encoded)
    payload_json: bytes | None = None
    #: the exact published message, when decoded from the bus (``change_codec.decode``)
    message: bytes | None = None


async def apply_change(
    conn: Conn, match_id: int, patch: MatchPatch | PatchFn, *, at: datetime | None = None
) -> list[Change]:
    """Apply ``patch`` (or ``patch(current_state)``) to match ``match_id``.

    ``at`` is the time recorded on the change (default: now); replay passes
    the recorded time so a replayed matchday is reproducible byte for byte.

    Returns the change-log rows written, in seq order (empty: nothing changed).
    Raises ``NotFound`` for an unknown match and ``InvalidChange`` for a patch
    the model's rules refuse (negative score, ...).
    """
    async with atomic(conn):
        cur = await conn.execute(MATCH_SELECT + " WHERE m.id = %s FOR UPDATE OF m", (match_id,))
        row = await cur.fetchone()
        if row is None:
            raise NotFound("match", match_id)
        state = state_from_row(row)
        if callable(patch):
            produced = patch(state)
            resolved = await produced if inspect.isawaitable(produced) else produced
            if resolved is None:
                return []
            patch = resolved
        _validate(patch)
        return await _write(conn, row, state, patch, at or clock.now())


def _validate(patch: MatchPatch) -> None:
    for name in ("home_score", "away_score"):
        value = getattr(patch, name)
        if value is not None and not 0 <= value <= 999:
            raise InvalidChange(f"{name}={value} is out of range; scores are 0..999")
    if (patch.home_score is None) != (patch.away_score is None):
        raise InvalidChange("set home_score and away_score together")


async def _write(
    conn: Conn, row: dict[str, Any], state: MatchState, patch: MatchPatch, now: datetime
) -> list[Change]:
    """Events through SQL (they need the table), everything else planned by the
    pure ``store.write_plan.plan``, then the row, the override and the log written."""
    events = await _write_events(conn, row, state, patch, now)
    planned = plan(state, patch, now, events)
    if planned.empty:
        return []
    written = [
        Change(state.id, c.seq, c.type, c.payload, patch.source, now) for c in planned.changes
    ]
    for change in written:
        change_codec.check(change)  # nothing that cannot be published is ever stored
    await _update_match(conn, state.id, planned.sets)
    if planned.override is not None:
        await _store_override(conn, state.id, planned.override)
    elif planned.delete_override:
        await conn.execute("DELETE FROM overrides WHERE match_id = %s", (state.id,))
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO match_changes (match_id, seq, type, payload, source, created_at) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            [(c.match_id, c.seq, c.type, Jsonb(c.payload), c.source, now) for c in written],
        )
    await conn.execute("SELECT pg_notify(%s, %s)", (CHANGES_CHANNEL, str(state.id)))
    return written


async def _write_events(
    conn: Conn, row: dict[str, Any], state: MatchState, patch: MatchPatch, now: datetime
) -> tuple[tuple[str, dict[str, Any]], ...]:
    """Insert the patch's new events and retract the events it names; the
    ``(type, payload)`` of each that did something, in order (each new event
    takes the seq its ``commentary:new`` change will have)."""
    done: list[tuple[str, dict[str, Any]]] = []
    for event in patch.new_events:
        inserted = await _insert_event(conn, row, event, state.seq + len(done) + 1, now)
        if inserted is not None:
            done.append(("commentary:new", inserted))
    if patch.retract_event_keys or patch.retract_event_ids:
        cur = await conn.execute(
            "UPDATE events SET retracted = true WHERE match_id = %s "
            "AND (event_key = ANY(%s) OR id = ANY(%s)) AND NOT retracted RETURNING id",
            (state.id, list(patch.retract_event_keys), list(patch.retract_event_ids)),
        )
        ids = sorted(r["id"] for r in await cur.fetchall())
        if ids:
            cur = await conn.execute(EVENT_SELECT + " WHERE e.id = ANY(%s) ORDER BY e.id", (ids,))
            done.extend(("commentary:update", event_json(r)) for r in await cur.fetchall())
    return tuple(done)


#: ``matches`` columns holding JSON (wrapped for psycopg when written)
_JSON_COLUMNS = frozenset({"breakdown", "stats"})


async def _update_match(conn: Conn, match_id: int, sets: dict[str, Any]) -> None:
    """``UPDATE matches SET <planned columns> WHERE id = match_id``, composed with
    ``psycopg.sql`` (column names are identifiers, never interpolated text)."""
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(name), sql.Placeholder(name)) for name in sets
    )
    values = {name: Jsonb(v) if name in _JSON_COLUMNS else v for name, v in sets.items()}
    query = sql.SQL("UPDATE matches SET {} WHERE id = {}").format(
        assignments, sql.Placeholder("match_id")
    )
    await conn.execute(query, {**values, "match_id": match_id})


async def _insert_event(
    conn: Conn, match_row: dict[str, Any], event: NewEvent, seq: int, now: datetime
) -> dict[str, Any] | None:
    team_id = None
    if event.side == "home":
        team_id = match_row["home_team_id"]
    elif event.side == "away":
        team_id = match_row["away_team_id"]
    cur = await conn.execute(
        """INSERT INTO events (match_id, seq, event_key, source, type, minute, added_time,
                               side, team_id, actor, message, metadata, retracted, created_at,
                               period, sequence, tags, original_type)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (match_id, event_key) DO NOTHING
           RETURNING *""",
        (
            match_row["id"], seq, event.key, event.source, event.type.value, event.minute,
            event.added_time, event.side, team_id, event.actor, event.message,
            Jsonb(event.metadata), event.retracted, now,
            event.period.value if event.period else None, event.sequence, list(event.tags),
            event.original_type,
        ),
    )  # fmt: skip
    inserted = await cur.fetchone()
    if inserted is None:
        return None
    team_name = None
    if team_id is not None:
        team_name = match_row["home_name"] if event.side == "home" else match_row["away_name"]
    return event_json(inserted | {"team_name": team_name})


async def _store_override(conn: Conn, match_id: int, ov: OverrideInfo) -> None:
    """Store the match's override as planned (already merged with the current one)."""
    await conn.execute(
        """INSERT INTO overrides (match_id, status, home_score, away_score, who, reason, since)
           VALUES (%s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (match_id) DO UPDATE SET
             status = EXCLUDED.status, home_score = EXCLUDED.home_score,
             away_score = EXCLUDED.away_score, who = EXCLUDED.who,
             reason = EXCLUDED.reason, since = EXCLUDED.since""",
        (
            match_id,
            ov.status.value if ov.status else None,
            ov.home_score,
            ov.away_score,
            ov.who,
            ov.reason,
            ov.since,
        ),
    )
