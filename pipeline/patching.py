"""Applying a ``MatchPatch`` to plain data, the way the store's write path does.

``apply_patch`` mirrors ``store.writes.apply_change`` without I/O: a score
is set only as a pair and, when it changes, ``score_source`` becomes the
patch's source; a status change sets ``status_source``. ``seq`` is left
alone (the store numbers each change-log row). ``apply_events`` does the
same for the match's events: appends new keys, marks retractions.

Used by ``pipeline.reconcile.settle`` to chain decisions, and by tests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from livescore.model import MatchPatch, MatchState
from pipeline.event_merge import ExistingEvent


def apply_patch(state: MatchState, patch: MatchPatch) -> MatchState:
    """The state after ``patch``; ``state`` itself is not changed."""
    changes: dict[str, Any] = {}
    score = (patch.home_score, patch.away_score)
    if None not in score and score != (state.home_score, state.away_score):
        changes.update(
            home_score=patch.home_score, away_score=patch.away_score, score_source=patch.source
        )
    if patch.status is not None and patch.status != state.status:
        changes.update(status=patch.status, status_source=patch.source)
    for name in ("breakdown", "clock", "stats", "start_time", "stage", "group"):
        value = getattr(patch, name)
        if value is not None:
            changes[name] = value
    if patch.override is not None:
        changes["override"] = patch.override
    elif patch.clear_override:
        changes["override"] = None
    return dataclasses.replace(state, **changes) if changes else state


def apply_events(existing: Sequence[ExistingEvent], patch: MatchPatch) -> tuple[ExistingEvent, ...]:
    """The match's events after ``patch``: new keys appended, then retractions marked
    (the store's order)."""
    events = list(existing)
    keys = {e.key for e in events if e.key is not None}
    for new in patch.new_events:
        if new.key is not None and new.key in keys:
            continue
        if new.key is not None:
            keys.add(new.key)
        events.append(
            ExistingEvent(
                key=new.key,
                type=new.type,
                side=new.side,
                minute=new.minute,
                source=new.source,
                retracted=new.retracted,
                shootout=bool(new.metadata.get("shootout", False)),
            )
        )
    retract = set(patch.retract_event_keys)
    return tuple(dataclasses.replace(e, retracted=True) if e.key in retract else e for e in events)
