"""The plain data reconciliation works on: what it reads and what it decides.

Re-exported by ``pipeline.reconcile``; see its docstring for the rules.
All datetimes are timezone-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from livescore.errors import ConfigError
from livescore.model import MatchObservation, MatchPatch


@dataclass(frozen=True, slots=True)
class ProviderView:
    """The latest observation of one match by one feed.

    ``feed`` is the configured feed name (what ``score_source`` records);
    ``priority`` is its rank, LOWER is more trusted (1 beats 10);
    ``observed_at`` is when we fetched it.
    """

    feed: str
    priority: int
    observed_at: datetime
    observation: MatchObservation

    @property
    def carries_events(self) -> bool:
        """Whether this view says anything about commentary."""
        return self.observation.events_complete or bool(self.observation.events)


@dataclass(frozen=True, slots=True)
class ReconcilePolicy:
    """The knobs of reconciliation.

    stale_after:       a view older than this is not fresh while the match is
                       hot (in play or suspended, or some feed says so); a hot
                       in-play match with no fresh view is flagged stale.
    idle_stale_after:  freshness for matches that are not hot (scheduled,
                       postponed, finished): idle polling is slow, and a feed
                       polled ten minutes ago still speaks for a match
                       kicking off tomorrow.
    finished_window:   how long after the final whistle the feed that set the
                       final score may still correct it.
    assumed_duration:  when the finish time is unknown, it is taken as
                       ``start_time + assumed_duration``.
    duplicate_minute_window: events of two feeds at most this many minutes
                       apart (same kind, same side) are one event.
    """

    stale_after: timedelta = timedelta(minutes=3)
    idle_stale_after: timedelta = timedelta(minutes=30)
    finished_window: timedelta = timedelta(hours=2)
    assumed_duration: timedelta = timedelta(hours=2)
    duplicate_minute_window: int = 1

    def __post_init__(self) -> None:
        for name in ("stale_after", "idle_stale_after", "finished_window", "assumed_duration"):
            if getattr(self, name) <= timedelta(0):
                raise ConfigError(f"reconcile policy: {name} must be positive")
        if self.idle_stale_after < self.stale_after:
            raise ConfigError("reconcile policy: idle_stale_after must be >= stale_after")
        if self.duplicate_minute_window < 0:
            raise ConfigError("reconcile policy: duplicate_minute_window must be >= 0")


DEFAULT_POLICY = ReconcilePolicy()

RejectionCode = Literal[
    "illegal_status",  # the status move is not in the state machine
    "score_decrease",  # lower score, not from the score source nor a retraction
    "lagging_score",  # a rise only a goal retracted elsewhere explains (a lagging feed)
    "invalid_score",  # negative score
    "finished_score",  # finished match: only the score source may change the score
    "overridden",  # a manual override pins the match
]


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a feed's view was not applied (recorded on its observation)."""

    feed: str
    code: RejectionCode
    reason: str


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one reconciliation.

    patch:       what to apply (None: nothing changes).
    rejected:    views refused, most trusted first.
    stale:       an in-play match whose feeds all went quiet (nothing guessed).
    authority:   the feed whose status/score/clock/stats were taken, if any.
    events_from: the feed whose commentary was merged, if any.
    """

    patch: MatchPatch | None
    rejected: tuple[Rejection, ...] = ()
    stale: bool = False
    authority: str | None = None
    events_from: str | None = None
