"""Merging one feed's commentary into a match's existing events.

Pure functions over plain data. The rules:

* **Keys are namespaced by feed**: event ``k`` of feed ``espn`` is stored as
  ``"espn:k"``, so two feeds never collide and re-polling never duplicates.
  An event whose key is already stored is skipped.
* **Cross-feed duplicates are skipped**: a new event that matches an event
  already stored from *another* source (same kind, same side, same shoot-out
  flag, minutes at most ``minute_window`` apart, both minutes known) is the
  same real event seen twice. Goal, penalty goal and own goal count as one
  kind (feeds disagree on which it was). Each stored event absorbs at most
  one new event (so a feed reporting two goals where another reported one
  adds the second); the closest minute wins, then the key. Free text is
  never matched across feeds.
* **Retractions** (VAR): an incoming event with ``retracted=True`` marks the
  stored event it is (same key, else its cross-feed duplicate) retracted; a
  retraction of an event never seen is appended as a retracted event, so the
  history shows it. Nothing is ever un-retracted.
* **Shoot-out kicks** are stored with ``metadata["shootout"] = True`` and
  never count as goals.
* The ``side`` of a scoring event is the side *credited* with the goal (an
  own goal by a home player is an ``away`` own goal); adapters normalize it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from livescore.model import SCORING_EVENT_TYPES, EventObservation, EventType, NewEvent, Side


@dataclass(frozen=True, slots=True)
class ExistingEvent:
    """A stored event of the match, as plain data (``key`` None: created via the API)."""

    key: str | None
    type: EventType
    side: Side | None
    minute: int | None
    source: str | None
    retracted: bool = False
    shootout: bool = False


@dataclass(frozen=True, slots=True)
class EventMerge:
    """What merging a feed's events adds: new events, keys to retract, and how
    many goals (not shoot-out kicks) each side loses to the retractions."""

    new_events: tuple[NewEvent, ...] = ()
    retract_event_keys: tuple[str, ...] = ()
    home_goals_retracted: int = 0
    away_goals_retracted: int = 0

    def goals_retracted(self, side: Side) -> int:
        return self.home_goals_retracted if side == "home" else self.away_goals_retracted


class _Countable(Protocol):
    @property
    def type(self) -> EventType: ...
    @property
    def side(self) -> Side | None: ...
    @property
    def retracted(self) -> bool: ...
    @property
    def shootout(self) -> bool: ...


def namespaced(feed: str, key: str) -> str:
    """The stored key of a feed's event."""
    return f"{feed}:{key}"


def counts_as_goal(event: _Countable) -> bool:
    """A scoring event that is neither retracted nor a shoot-out kick."""
    return event.type in SCORING_EVENT_TYPES and not event.retracted and not event.shootout


def score_from_events(events: Iterable[_Countable]) -> tuple[int, int]:
    """(home, away) goals from events, for feeds that only report events."""
    home = away = 0
    for event in events:
        if counts_as_goal(event):
            if event.side == "home":
                home += 1
            elif event.side == "away":
                away += 1
    return home, away


def _kind(event_type: EventType) -> str:
    return "goal" if event_type in SCORING_EVENT_TYPES else event_type.value


def _matches(new: EventObservation, old: ExistingEvent, window: int) -> bool:
    return (
        new.type is not EventType.TEXT
        and _kind(new.type) == _kind(old.type)
        and new.side == old.side
        and new.shootout == old.shootout
        and new.minute is not None
        and old.minute is not None
        and abs(new.minute - old.minute) <= window
    )


def merge_events(
    feed: str,
    events: Sequence[EventObservation],
    existing: Sequence[ExistingEvent],
    *,
    minute_window: int = 1,
) -> EventMerge:
    """Merge ``feed``'s ``events`` (in the feed's order) into ``existing``."""
    by_key = {e.key: e for e in existing if e.key is not None}
    pool = [e for e in existing if e.source != feed]
    claimed: set[int] = set()
    seen: set[str] = set()
    new_events: list[NewEvent] = []
    retract: list[str] = []
    lost = {"home": 0, "away": 0}

    def retracts(goal: EventObservation | ExistingEvent, key: str | None) -> None:
        # ``goal`` is the stored event when there is one (it is what counted)
        if key is not None and key not in retract:
            retract.append(key)
        if goal.type in SCORING_EVENT_TYPES and not goal.shootout and goal.side is not None:
            lost[goal.side] += 1

    for event in events:
        key = namespaced(feed, event.key)
        if key in seen:
            continue
        seen.add(key)
        stored = by_key.get(key)
        if stored is not None:
            if event.retracted and not stored.retracted:
                retracts(stored, key)
            continue
        twin = _claim(event, pool, claimed, minute_window)
        if twin is not None:
            if event.retracted and not twin.retracted:
                retracts(twin, twin.key)
            continue
        if event.retracted:
            retracts(event, None)
        new_events.append(_new_event(feed, key, event))
    return EventMerge(tuple(new_events), tuple(retract), lost["home"], lost["away"])


def reported_retractions(
    feed: str,
    events: Sequence[EventObservation],
    existing: Sequence[ExistingEvent],
    *,
    minute_window: int = 1,
) -> frozenset[int]:
    """Indices into ``existing`` of the events ``feed``'s own ``events`` report
    retracted: the stored event of the same key, else the cross-feed duplicate
    the retraction claims (the same matching and claiming as ``merge_events``)."""
    index_of_key = {e.key: i for i, e in enumerate(existing) if e.key is not None}
    others = [i for i, e in enumerate(existing) if e.source != feed]
    pool = [existing[i] for i in others]
    claimed: set[int] = set()
    seen: set[str] = set()
    reported: set[int] = set()
    for event in events:
        key = namespaced(feed, event.key)
        if key in seen:
            continue
        seen.add(key)
        stored = index_of_key.get(key)
        if stored is not None:
            if event.retracted:
                reported.add(stored)
            continue
        before = set(claimed)
        twin = _claim(event, pool, claimed, minute_window)
        if twin is not None and event.retracted:
            (new_claim,) = claimed - before
            reported.add(others[new_claim])
    return frozenset(reported)


def _claim(
    event: EventObservation, pool: list[ExistingEvent], claimed: set[int], window: int
) -> ExistingEvent | None:
    best: tuple[int, str, int] | None = None
    for index, old in enumerate(pool):
        if index in claimed or not _matches(event, old, window):
            continue
        assert event.minute is not None and old.minute is not None
        rank = (abs(event.minute - old.minute), old.key or "", index)
        if best is None or rank < best:
            best = rank
    if best is None:
        return None
    claimed.add(best[2])
    return pool[best[2]]


def _new_event(feed: str, key: str, event: EventObservation) -> NewEvent:
    metadata = dict(event.metadata)
    if event.shootout:
        metadata["shootout"] = True
    return NewEvent(
        type=event.type,
        minute=event.minute,
        key=key,
        added_time=event.added_time,
        side=event.side,
        actor=event.actor,
        message=event.message,
        metadata=metadata,
        source=feed,
        retracted=event.retracted,
    )
