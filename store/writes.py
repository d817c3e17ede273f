"""The single write path: every change to a match goes through ``apply_change``.

In ONE transaction it locks the match row (``SELECT ... FOR UPDATE``, so
concurrent writers on one match queue up instead of losing updates),
computes what the patch really changes, takes the match's next ``seq`` for
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

from psycopg.types.json import Jsonb

from livescore import clock
from livescore.errors import InvalidChange, NotFound
from livescore.model import (
    OVERRIDE_SOURCE,
    RELEASED_SOURCE,
    MatchPatch,
    MatchState,
    MatchStatus,
    NewEvent,
    OverrideInfo,
)
from store import change_codec
from store.db import CHANGES_CHANNEL, Conn, atomic
from store.shapes import EVENT_SELECT, MATCH_SELECT, event_json, override_from_row, state_from_row

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
    seq = state.seq
    changes: list[Change] = []

    def add(kind: str, payload: dict[str, Any]) -> None:
        nonlocal seq
        seq += 1
        changes.append(Change(state.id, seq, kind, payload, patch.source))

    # 1. events first: a goal's commentary arrives before the score it changes
    for event in patch.new_events:
        inserted = await _insert_event(conn, row, event, seq + 1, now)
        if inserted is not None:
            add("commentary:new", inserted)
    if patch.retract_event_keys:
        cur = await conn.execute(
            "UPDATE events SET retracted = true WHERE match_id = %s "
            "AND event_key = ANY(%s) AND NOT retracted RETURNING id",
            (state.id, list(patch.retract_event_keys)),
        )
        ids = sorted(r["id"] for r in await cur.fetchall())
        for event_id in ids:
            cur = await conn.execute(EVENT_SELECT + " WHERE e.id = %s", (event_id,))
            event_row = await cur.fetchone()
            assert event_row is not None
            add("commentary:update", event_json(event_row))

    # 2. the match row
    sets: dict[str, Any] = {}
    score_changed = False
    if (
        patch.home_score is not None
        and patch.away_score is not None
        and (patch.home_score, patch.away_score) != (state.home_score, state.away_score)
    ):
        sets["home_score"], sets["away_score"] = patch.home_score, patch.away_score
        sets["score_source"] = patch.source
        score_changed = True
    if patch.breakdown is not None and patch.breakdown != state.breakdown:
        sets["breakdown"] = Jsonb(patch.breakdown.to_json())
        score_changed = True
    if patch.clock is not None and patch.clock != state.clock:
        sets["clock_minute"] = patch.clock.minute
        sets["clock_added"] = patch.clock.added_time
        sets["clock_period"] = patch.clock.period.value if patch.clock.period else None
        score_changed = True
    stats_changed = patch.stats is not None and patch.stats != state.stats
    if stats_changed:
        sets["stats"] = Jsonb(patch.stats)
        score_changed = True
    if score_changed:
        new_clock = patch.clock if patch.clock is not None else state.clock
        new_breakdown = patch.breakdown if patch.breakdown is not None else state.breakdown
        payload: dict[str, Any] = {
            "homeScore": sets.get("home_score", state.home_score),
            "awayScore": sets.get("away_score", state.away_score),
            "breakdown": new_breakdown.to_json(),
            "clock": new_clock.to_json(),
        }
        if stats_changed:
            payload["stats"] = patch.stats
        add("score:update", payload)

    if patch.status is not None and patch.status != state.status:
        sets["status"] = patch.status.value
        sets["status_source"] = patch.source
        if patch.status is MatchStatus.FINISHED:
            sets["finished_at"] = now
        new_clock = patch.clock if patch.clock is not None else state.clock
        add(
            "match:status",
            {
                "status": patch.status.value,
                "previous": state.status.value,
                "clock": new_clock.to_json(),
            },
        )

    update: dict[str, Any] = {}
    if patch.start_time is not None and patch.start_time != state.start_time:
        sets["start_time"] = patch.start_time
        update["startTime"] = patch.start_time.isoformat()
    if patch.override is not None:
        update["override"] = await _set_override(conn, state.id, patch.override)
    elif patch.clear_override and state.override is not None:
        await conn.execute("DELETE FROM overrides WHERE match_id = %s", (state.id,))
        update["override"] = None
        # what the override set is vouched for by nobody now: feeds take over
        if state.score_source == OVERRIDE_SOURCE:
            sets["score_source"] = RELEASED_SOURCE
        if state.status_source == OVERRIDE_SOURCE:
            sets["status_source"] = RELEASED_SOURCE
    if update:
        add("match:update", update)

    if not changes:
        return []
    written = [Change(c.match_id, c.seq, c.type, c.payload, c.source, now) for c in changes]
    for change in written:
        change_codec.check(change)  # nothing that cannot be published is ever stored
    sets["seq"] = seq
    sets["updated_at"] = now
    columns = ", ".join(f"{name} = %({name})s" for name in sets)
    sets["id"] = state.id
    await conn.execute(f"UPDATE matches SET {columns} WHERE id = %(id)s", sets)
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO match_changes (match_id, seq, type, payload, source, created_at) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            [(c.match_id, c.seq, c.type, Jsonb(c.payload), c.source, now) for c in changes],
        )
    await conn.execute("SELECT pg_notify(%s, %s)", (CHANGES_CHANNEL, str(state.id)))
    return written


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
                               side, team_id, actor, message, metadata, retracted, created_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (match_id, event_key) DO NOTHING
           RETURNING *""",
        (
            match_row["id"], seq, event.key, event.source, event.type.value, event.minute,
            event.added_time, event.side, team_id, event.actor, event.message,
            Jsonb(event.metadata), event.retracted, now,
        ),
    )  # fmt: skip
    inserted = await cur.fetchone()
    if inserted is None:
        return None
    team_name = None
    if team_id is not None:
        team_name = match_row["home_name"] if event.side == "home" else match_row["away_name"]
    return event_json(inserted | {"team_name": team_name})


async def _set_override(conn: Conn, match_id: int, ov: OverrideInfo) -> dict[str, Any]:
    """Upsert the match's override; returns the resulting override's JSON."""
    cur = await conn.execute(
        """INSERT INTO overrides (match_id, status, home_score, away_score, who, reason, since)
           VALUES (%s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (match_id) DO UPDATE SET
             status = COALESCE(EXCLUDED.status, overrides.status),
             home_score = COALESCE(EXCLUDED.home_score, overrides.home_score),
             away_score = COALESCE(EXCLUDED.away_score, overrides.away_score),
             who = EXCLUDED.who, reason = EXCLUDED.reason, since = EXCLUDED.since
           RETURNING status AS ov_status, home_score AS ov_home, away_score AS ov_away,
                     who AS ov_who, reason AS ov_reason, since AS ov_since""",
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
    row = await cur.fetchone()
    stored = override_from_row(row) if row else None
    assert stored is not None
    return stored.to_json()
