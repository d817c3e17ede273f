"""The canonical model: what every provider feed is normalized into.

Plain, frozen dataclasses and enums with no I/O. Providers produce
``MatchObservation`` values; the pipeline reconciles them into one match
state; the store persists it. Nothing here imports httpx, psycopg, redis or
sanic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

Side = Literal["home", "away"]


class MatchStatus(StrEnum):
    """The contract's match statuses (CONTRACT.md section 3)."""

    SCHEDULED = "scheduled"
    LIVE = "live"
    HALFTIME = "halftime"
    EXTRA_TIME = "extra_time"
    PENALTIES = "penalties"
    FINISHED = "finished"
    POSTPONED = "postponed"
    SUSPENDED = "suspended"
    CANCELLED = "cancelled"
    ABANDONED = "abandoned"


#: Statuses during which the ball may be in play (or about to be again).
IN_PLAY_STATUSES: frozenset[MatchStatus] = frozenset(
    {MatchStatus.LIVE, MatchStatus.HALFTIME, MatchStatus.EXTRA_TIME, MatchStatus.PENALTIES}
)

#: Statuses a match is not expected to leave on its own.
TERMINAL_STATUSES: frozenset[MatchStatus] = frozenset(
    {MatchStatus.FINISHED, MatchStatus.CANCELLED, MatchStatus.ABANDONED}
)


class EventType(StrEnum):
    """Commentary event kinds (CONTRACT.md section 3)."""

    GOAL = "goal"
    OWN_GOAL = "own_goal"
    PENALTY_GOAL = "penalty_goal"
    MISSED_PENALTY = "missed_penalty"
    YELLOW = "yellow"
    SECOND_YELLOW = "second_yellow"
    RED = "red"
    SUBSTITUTION = "substitution"
    VAR = "var"
    PERIOD_START = "period_start"
    PERIOD_END = "period_end"
    TEXT = "text"


#: Event kinds that put a goal on the scoreboard (unless retracted or part of a shoot-out).
SCORING_EVENT_TYPES: frozenset[EventType] = frozenset(
    {EventType.GOAL, EventType.OWN_GOAL, EventType.PENALTY_GOAL}
)


class Period(StrEnum):
    """Which part of the match the clock is in."""

    FIRST_HALF = "1H"
    HALFTIME = "HT"
    SECOND_HALF = "2H"
    EXTRA_TIME = "ET"
    PENALTIES = "PEN"
    FULL_TIME = "FT"


@dataclass(frozen=True, slots=True)
class ScoreLine:
    """A home/away pair; ``None`` means the provider did not say."""

    home: int | None = None
    away: int | None = None

    def is_known(self) -> bool:
        return self.home is not None and self.away is not None

    def to_json(self) -> dict[str, int | None]:
        return {"home": self.home, "away": self.away}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> ScoreLine | None:
        if not data:
            return None
        return cls(home=data.get("home"), away=data.get("away"))


@dataclass(frozen=True, slots=True)
class Breakdown:
    """Score by phase. ``regular_time`` is the score after 90 minutes,
    ``extra_time`` the goals scored in extra time only, ``penalties`` the
    shoot-out kicks converted (never part of the match score)."""

    half_time: ScoreLine | None = None
    regular_time: ScoreLine | None = None
    extra_time: ScoreLine | None = None
    penalties: ScoreLine | None = None

    def to_json(self) -> dict[str, dict[str, int | None] | None]:
        return {
            "halfTime": self.half_time.to_json() if self.half_time else None,
            "regularTime": self.regular_time.to_json() if self.regular_time else None,
            "extraTime": self.extra_time.to_json() if self.extra_time else None,
            "penalties": self.penalties.to_json() if self.penalties else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Breakdown:
        data = data or {}
        return cls(
            half_time=ScoreLine.from_json(data.get("halfTime")),
            regular_time=ScoreLine.from_json(data.get("regularTime")),
            extra_time=ScoreLine.from_json(data.get("extraTime")),
            penalties=ScoreLine.from_json(data.get("penalties")),
        )


@dataclass(frozen=True, slots=True)
class Clock:
    """Match clock. ``minute`` is the regulation minute (45, 90, 105, 120 at
    most in their periods); stoppage time goes in ``added_time`` (90+6 is
    minute=90, added_time=6)."""

    minute: int | None = None
    added_time: int | None = None
    period: Period | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "minute": self.minute,
            "addedTime": self.added_time,
            "period": self.period.value if self.period else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Clock:
        data = data or {}
        period = data.get("period")
        return cls(
            minute=data.get("minute"),
            added_time=data.get("addedTime"),
            period=Period(period) if period else None,
        )


@dataclass(frozen=True, slots=True)
class TeamRef:
    """A team as one provider names it."""

    provider_id: str
    name: str
    short_name: str | None = None
    tla: str | None = None


@dataclass(frozen=True, slots=True)
class CompetitionRef:
    """A competition as one provider names it."""

    provider_id: str
    name: str
    country: str | None = None


@dataclass(frozen=True, slots=True)
class EventObservation:
    """One commentary event as a provider reports it.

    ``key`` is stable across polls: the provider's own event id when it has
    one, else a deterministic key built from (match, type, team, minute,
    added time, ordinal) so re-polling never duplicates an event.
    """

    key: str
    type: EventType
    minute: int | None
    added_time: int | None = None
    side: Side | None = None
    actor: str | None = None
    message: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    retracted: bool = False
    #: True for kicks of a penalty shoot-out: they never count as match goals.
    shootout: bool = False


@dataclass(frozen=True, slots=True)
class MatchObservation:
    """Everything one provider said about one match in one response."""

    provider: str
    provider_match_id: str
    sport: str
    competition: CompetitionRef | None
    home: TeamRef
    away: TeamRef
    start_time: datetime
    status: MatchStatus
    #: The provider's own status code, kept for audit ("1H", "IN_PLAY", ...).
    provider_status: str
    home_score: int | None
    away_score: int | None
    breakdown: Breakdown = field(default_factory=Breakdown)
    clock: Clock = field(default_factory=Clock)
    events: tuple[EventObservation, ...] = ()
    #: False when this feed never carries events (absent events mean nothing).
    events_complete: bool = False
    stats: dict[str, Any] = field(default_factory=dict)
    #: When the provider says the data was last updated (UTC), if trustworthy.
    provider_updated_at: datetime | None = None
    #: The phase of the competition (``providers.parsing.stage_key``: "group_stage",
    #: "regular_season", "last_16", ...), None when the feed does not say.
    stage: str | None = None
    #: The group within it (``providers.parsing.group_label``: "Group B"), None when
    #: the feed does not say or the match is in no group.
    group: str | None = None


# -- canonical state and the patches applied to it --------------------------------------

#: ``score_source``/``status_source`` of a match whose manual override was
#: cleared: nobody vouches for the current values any more, so reconciliation
#: takes the most trusted fresh feed's score and status as they are.
RELEASED_SOURCE = "released"
#: the source recorded by a manual override
OVERRIDE_SOURCE = "override"


@dataclass(frozen=True, slots=True)
class OverrideInfo:
    """A manual override pinning a match (who/why/since); fields it pins."""

    who: str
    reason: str
    since: datetime
    status: MatchStatus | None = None
    home_score: int | None = None
    away_score: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "who": self.who,
            "reason": self.reason,
            "since": self.since.isoformat(),
            "status": self.status.value if self.status else None,
            "homeScore": self.home_score,
            "awayScore": self.away_score,
        }


@dataclass(frozen=True, slots=True)
class MatchState:
    """The canonical state of one match as stored (what reconciliation starts from)."""

    id: int
    status: MatchStatus
    home_score: int
    away_score: int
    start_time: datetime
    seq: int = 0
    breakdown: Breakdown = field(default_factory=Breakdown)
    clock: Clock = field(default_factory=Clock)
    stats: dict[str, Any] = field(default_factory=dict)
    override: OverrideInfo | None = None
    #: Which source last set the score / status (a feed name, "override", "api", "automation").
    score_source: str | None = None
    status_source: str | None = None
    #: when the current period's clock read its first minute (None: stopped);
    #: see livescore.matchclock
    clock_started_at: datetime | None = None
    #: the competition phase and group (MatchObservation's), None: unknown
    stage: str | None = None
    group: str | None = None


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append to a match's commentary.

    ``key`` makes the append idempotent: an event whose (match, key) already
    exists is not added again. API-created events have no key.
    """

    type: EventType
    minute: int | None
    key: str | None = None
    added_time: int | None = None
    side: Side | None = None
    actor: str | None = None
    message: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    retracted: bool = False
    #: the clock period the event happened in (the original API's period number, mapped)
    period: Period | None = None
    #: the client's own ordering number (the original API's ``sequence``), kept as sent
    sequence: int | None = None
    #: the client's labels (the original API's ``tags``), kept as sent
    tags: tuple[str, ...] = ()
    #: the kind as the client sent it when it is not one of ours (``corner``, ``card``)
    original_type: str | None = None


@dataclass(frozen=True, slots=True)
class MatchPatch:
    """What to change on one match. ``None`` fields are left as they are.

    The store's single write path turns a patch into change-log rows, each
    with the match's next ``seq``; a patch that changes nothing writes nothing.
    """

    source: str
    status: MatchStatus | None = None
    home_score: int | None = None
    away_score: int | None = None
    breakdown: Breakdown | None = None
    clock: Clock | None = None
    stats: dict[str, Any] | None = None
    start_time: datetime | None = None
    #: the competition phase / group (reference data: ``match:update``)
    stage: str | None = None
    group: str | None = None
    new_events: tuple[NewEvent, ...] = ()
    #: Keys of existing events to mark retracted (a VAR-cancelled goal).
    retract_event_keys: tuple[str, ...] = ()
    #: Ids of existing events to mark retracted (API events have no key).
    retract_event_ids: tuple[int, ...] = ()
    #: Set a manual override (or clear it with ``clear_override=True``).
    override: OverrideInfo | None = None
    clear_override: bool = False
