"""Pure factories for the reconciliation tests: states, observations, views, events.

No I/O; every default is a plain live match kicking off at ``KICKOFF``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from livescore.model import (
    EventObservation,
    EventType,
    MatchObservation,
    MatchState,
    MatchStatus,
    OverrideInfo,
    Side,
    TeamRef,
)
from pipeline.event_merge import ExistingEvent
from pipeline.reconcile import ProviderView

KICKOFF = datetime(2026, 5, 1, 18, 0, tzinfo=UTC)
#: "now" in most tests: the 30th minute.
NOW = KICKOFF + timedelta(minutes=30)


def state(
    status: MatchStatus = MatchStatus.LIVE,
    home: int = 0,
    away: int = 0,
    *,
    score_source: str | None = None,
    **kwargs: Any,
) -> MatchState:
    return MatchState(
        id=1,
        status=status,
        home_score=home,
        away_score=away,
        start_time=kwargs.pop("start_time", KICKOFF),
        score_source=score_source,
        **kwargs,
    )


def override(**kwargs: Any) -> OverrideInfo:
    values: dict[str, Any] = {"who": "ops", "reason": "feed wrong", "since": KICKOFF}
    return OverrideInfo(**(values | kwargs))


def observation(
    status: MatchStatus = MatchStatus.LIVE,
    home: int | None = 0,
    away: int | None = 0,
    *,
    provider: str = "a",
    events: tuple[EventObservation, ...] = (),
    **kwargs: Any,
) -> MatchObservation:
    return MatchObservation(
        provider=provider,
        provider_match_id="m1",
        sport="football",
        competition=None,
        home=TeamRef("h", "Home FC"),
        away=TeamRef("w", "Away FC"),
        start_time=kwargs.pop("start_time", KICKOFF),
        status=status,
        provider_status=str(status),
        home_score=home,
        away_score=away,
        events=events,
        **kwargs,
    )


def view(
    feed: str = "a",
    priority: int = 1,
    status: MatchStatus = MatchStatus.LIVE,
    home: int | None = 0,
    away: int | None = 0,
    *,
    age: timedelta = timedelta(0),
    now: datetime = NOW,
    **kwargs: Any,
) -> ProviderView:
    """A view of ``feed`` fetched ``age`` before ``now``."""
    obs = observation(status, home, away, provider=feed, **kwargs)
    return ProviderView(feed=feed, priority=priority, observed_at=now - age, observation=obs)


def event(
    key: str,
    side: Side | None = "home",
    minute: int | None = 10,
    type: EventType = EventType.GOAL,
    **kwargs: Any,
) -> EventObservation:
    return EventObservation(key=key, type=type, minute=minute, side=side, **kwargs)


def stored(
    key: str | None,
    side: Side | None = "home",
    minute: int | None = 10,
    type: EventType = EventType.GOAL,
    *,
    source: str | None = None,
    retracted: bool = False,
    shootout: bool = False,
) -> ExistingEvent:
    """A stored event; ``source`` defaults to the feed prefix of its key."""
    if source is None and key is not None and ":" in key:
        source = key.split(":", 1)[0]
    return ExistingEvent(key, type, side, minute, source, retracted, shootout)
