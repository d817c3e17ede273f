"""The pure core of the write path: (current state, patch) -> (row update, changes).

``plan`` decides everything a patch does to a match without touching the
database: which columns of the ``matches`` row change, and which change-log
entries follow, numbered from the match's next ``seq`` and ordered events
first (a goal's commentary arrives before the score it changes), then the
score, then the status, then ``match:update`` (kickoff time, stage, group,
override). A patch that changes nothing plans nothing and consumes no seq.

Events are the one part that needs the database (an insert that may find the
event already there, a retraction that may match nothing), so
``store.writes`` does those first and passes what they produced in as
``event_changes``. Everything else is here, tested without PostgreSQL
(``tests/store/test_write_plan.py``, tables and properties).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from livescore.matchclock import clock_document, next_start
from livescore.model import (
    OVERRIDE_SOURCE,
    RELEASED_SOURCE,
    MatchPatch,
    MatchState,
    MatchStatus,
    OverrideInfo,
)


@dataclass(frozen=True, slots=True)
class PlannedChange:
    """One change-log entry: its seq, type and payload (the message's ``data``)."""

    seq: int
    type: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class WritePlan:
    """What one patch does: ``sets`` (column -> value) for the match row, the
    change-log entries in order, and what happens to the override row."""

    sets: dict[str, Any] = field(default_factory=dict)
    changes: tuple[PlannedChange, ...] = ()
    #: the override to store (already merged with the current one), if any
    override: OverrideInfo | None = None
    delete_override: bool = False

    @property
    def empty(self) -> bool:
        return not self.changes


def merged_override(current: OverrideInfo | None, new: OverrideInfo) -> OverrideInfo:
    """An override set over an existing one keeps what the new one leaves unpinned."""
    if current is None:
        return new
    return OverrideInfo(
        who=new.who,
        reason=new.reason,
        since=new.since,
        status=new.status if new.status is not None else current.status,
        home_score=new.home_score if new.home_score is not None else current.home_score,
        away_score=new.away_score if new.away_score is not None else current.away_score,
    )


def plan(
    state: MatchState,
    patch: MatchPatch,
    now: datetime,
    event_changes: tuple[tuple[str, dict[str, Any]], ...] = (),
) -> WritePlan:
    """Everything ``patch`` changes on ``state``; ``event_changes``: the
    ``(type, payload)`` of the events the write path just inserted or retracted."""
    entries: list[tuple[str, dict[str, Any]]] = list(event_changes)
    sets: dict[str, Any] = {}

    score = _score(state, patch, sets)
    if score is not None:
        entries.append(("score:update", score))
    status = _status(state, patch, sets, now)
    if status is not None:
        entries.append(("match:status", status))
    update, override, delete = _match_update(state, patch, sets)
    if update:
        entries.append(("match:update", update))
    _running_clock(state, patch, sets, entries, now)

    if not entries:
        return WritePlan()
    changes = tuple(
        PlannedChange(state.seq + n, kind, payload) for n, (kind, payload) in enumerate(entries, 1)
    )
    sets["seq"] = changes[-1].seq
    sets["updated_at"] = now
    return WritePlan(sets, changes, override, delete)


def _score(state: MatchState, patch: MatchPatch, sets: dict[str, Any]) -> dict[str, Any] | None:
    """The ``score:update`` payload (score, breakdown, clock, stats), if any of them moved."""
    changed = False
    if (
        patch.home_score is not None
        and patch.away_score is not None
        and (patch.home_score, patch.away_score) != (state.home_score, state.away_score)
    ):
        sets["home_score"], sets["away_score"] = patch.home_score, patch.away_score
        sets["score_source"] = patch.source
        changed = True
    if patch.breakdown is not None and patch.breakdown != state.breakdown:
        sets["breakdown"] = patch.breakdown.to_json()
        changed = True
    if patch.clock is not None and patch.clock != state.clock:
        sets["clock_minute"] = patch.clock.minute
        sets["clock_added"] = patch.clock.added_time
        sets["clock_period"] = patch.clock.period.value if patch.clock.period else None
        changed = True
    stats_changed = patch.stats is not None and patch.stats != state.stats
    if stats_changed:
        sets["stats"] = patch.stats
        changed = True
    if not changed:
        return None
    clock = patch.clock if patch.clock is not None else state.clock
    breakdown = patch.breakdown if patch.breakdown is not None else state.breakdown
    payload: dict[str, Any] = {
        "homeScore": sets.get("home_score", state.home_score),
        "awayScore": sets.get("away_score", state.away_score),
        "breakdown": breakdown.to_json(),
        "clock": clock.to_json(),
    }
    if stats_changed:
        payload["stats"] = patch.stats
    return payload


def _status(
    state: MatchState, patch: MatchPatch, sets: dict[str, Any], now: datetime
) -> dict[str, Any] | None:
    if patch.status is None or patch.status == state.status:
        return None
    sets["status"] = patch.status.value
    sets["status_source"] = patch.source
    if patch.status is MatchStatus.FINISHED:
        sets["finished_at"] = now
    clock = patch.clock if patch.clock is not None else state.clock
    return {"status": patch.status.value, "previous": state.status.value, "clock": clock.to_json()}


def _running_clock(
    state: MatchState,
    patch: MatchPatch,
    sets: dict[str, Any],
    entries: list[tuple[str, dict[str, Any]]],
    now: datetime,
) -> None:
    """The period start that lets clients tick the clock (``livescore.matchclock``):
    moved only when the clock or the status does, stored with the row, and every
    payload's ``clock`` carries it (so caches and pages patched from a change agree
    with a fresh read)."""
    clock = patch.clock if patch.clock is not None else state.clock
    status = patch.status if patch.status is not None else state.status
    started = state.clock_started_at
    if clock != state.clock or status != state.status:
        started = next_start(
            before_status=state.status,
            before_clock=state.clock,
            before_start=state.clock_started_at,
            status=status,
            clock=clock,
            at=now,
            source=patch.source,
        )
        if started != state.clock_started_at:
            sets["clock_started_at"] = started
    for kind, payload in entries:
        if kind in ("score:update", "match:status"):
            payload["clock"] = clock_document(clock, started)


def _match_update(
    state: MatchState, patch: MatchPatch, sets: dict[str, Any]
) -> tuple[dict[str, Any], OverrideInfo | None, bool]:
    """The ``match:update`` payload (kickoff time, stage, group, override) and the
    override's fate."""
    update: dict[str, Any] = {}
    override: OverrideInfo | None = None
    delete = False
    if patch.start_time is not None and patch.start_time != state.start_time:
        sets["start_time"] = patch.start_time
        update["startTime"] = patch.start_time.isoformat()
    if patch.stage is not None and patch.stage != state.stage:
        sets["stage"] = update["stage"] = patch.stage
    if patch.group is not None and patch.group != state.group:
        sets["group_name"] = update["group"] = patch.group
    if patch.override is not None:
        override = merged_override(state.override, patch.override)
        update["override"] = override.to_json()
    elif patch.clear_override and state.override is not None:
        delete = True
        update["override"] = None
        # what the override set is vouched for by nobody now: feeds take over
        if state.score_source == OVERRIDE_SOURCE:
            sets["score_source"] = RELEASED_SOURCE
        if state.status_source == OVERRIDE_SOURCE:
            sets["status_source"] = RELEASED_SOURCE
    return update, override, delete
