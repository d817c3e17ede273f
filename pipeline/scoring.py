"""Keeping score over REST, the pure rules: a scorer's update -> a patch, and what
a commentary event does to the score of a match no feed covers.

* ``update_patch``: ``PATCH /api/matches/{id}`` (score, status, clock) as one
  ``MatchPatch``. A status move must be legal (``pipeline.status_machine``);
  a status given without a clock moves the clock with it (kickoff: 0' 1H,
  second half: 45' 2H, half time: 45' HT, extra time: 90' ET, penalties: PEN,
  full time: FT); half time from the first half records the half-time score.
* ``commentary_patch``: a scoring event (goal, own goal, penalty goal) counts
  for its team, and retracting one takes it back, in the same change as the
  event, when the score is the scorer's (``counts``: no feed covers the match
  and no override pins it). A goal that would count needs its team.

``pipeline.scorer`` does the I/O around them (row lock, coverage, audit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from livescore.errors import PipelineError
from livescore.model import (
    SCORING_EVENT_TYPES,
    Breakdown,
    Clock,
    EventType,
    MatchPatch,
    MatchState,
    MatchStatus,
    NewEvent,
    OverrideInfo,
    Period,
    ScoreLine,
)
from pipeline.status_machine import check_move

S = MatchStatus


class ScoringRefused(PipelineError):
    """A scorer's request the rules refuse; ``field`` names the body field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class ScoreUpdate:
    """What a scorer's PATCH asks for (None: leave as it is)."""

    home_score: int | None = None
    away_score: int | None = None
    status: MatchStatus | None = None
    minute: int | None = None
    added_time: int | None = None
    period: Period | None = None

    @property
    def clock_given(self) -> bool:
        return self.minute is not None or self.added_time is not None or self.period is not None

    @property
    def score_given(self) -> bool:
        return self.home_score is not None or self.away_score is not None


def status_clock(old: MatchStatus, new: MatchStatus, clock: Clock) -> Clock | None:
    """The clock a status move implies when the scorer sends none (None: unchanged)."""
    if new is S.LIVE and old is S.SCHEDULED:
        return Clock(0, None, Period.FIRST_HALF)
    if new is S.LIVE and old is S.HALFTIME:
        return Clock(45, None, Period.SECOND_HALF)
    if new is S.HALFTIME:
        return Clock(45, None, Period.HALFTIME)
    if new is S.EXTRA_TIME:
        return Clock(90, None, Period.EXTRA_TIME)
    if new is S.PENALTIES:
        return Clock(clock.minute, None, Period.PENALTIES)
    if new is S.FINISHED:
        return Clock(max(clock.minute or 0, 90), None, Period.FULL_TIME)
    return None


def _clock(state: MatchState, update: ScoreUpdate) -> Clock | None:
    implied = None
    if update.status is not None and update.status is not state.status:
        implied = status_clock(state.status, update.status, state.clock)
    if not update.clock_given:
        return implied
    base = implied or state.clock
    minute = update.minute if update.minute is not None else base.minute
    added: int | None = update.added_time
    if added is None and update.minute is None:  # a new minute alone is regular time
        added = base.added_time
    return Clock(minute, added, update.period or base.period)


def update_patch(
    state: MatchState, update: ScoreUpdate, *, source: str, override: OverrideInfo | None
) -> MatchPatch:
    """The patch for a scorer's update (``IllegalTransition`` for an illegal status
    move). ``override``: pin the match with it (a match a feed covers)."""
    if update.status is not None:
        check_move(state.status, update.status)
    home = away = None
    if update.score_given:
        home = update.home_score if update.home_score is not None else state.home_score
        away = update.away_score if update.away_score is not None else state.away_score
    breakdown = None
    if update.status is S.HALFTIME and state.status is S.LIVE:
        score = ScoreLine(
            home if home is not None else state.home_score,
            away if away is not None else state.away_score,
        )
        if state.breakdown.half_time is None:
            breakdown = Breakdown(
                half_time=score,
                regular_time=state.breakdown.regular_time,
                extra_time=state.breakdown.extra_time,
                penalties=state.breakdown.penalties,
            )
    return MatchPatch(
        source=source,
        status=update.status,
        home_score=home,
        away_score=away,
        clock=_clock(state, update),
        breakdown=breakdown,
        override=override,
    )


def goal_for(kind: EventType, side: str | None, *, shootout: bool = False) -> tuple[int, int]:
    """What one event adds to (home, away): a scoring event counts for its side (an
    own goal's side is the team it counts for); shoot-out kicks never count."""
    if kind not in SCORING_EVENT_TYPES or shootout:
        return 0, 0
    if side == "home":
        return 1, 0
    if side == "away":
        return 0, 1
    return 0, 0


def commentary_patch(
    state: MatchState,
    event: NewEvent,
    *,
    source: str,
    counts: bool,
    retracted: dict[str, Any] | None = None,
) -> MatchPatch:
    """The patch adding ``event`` (and retracting the stored event ``retracted``,
    as ``store.events.get_event`` returns it); with ``counts`` the score moves too."""
    retract_ids = (int(retracted["id"]),) if retracted is not None else ()
    if not counts:
        return MatchPatch(source=source, new_events=(event,), retract_event_ids=retract_ids)
    if event.type in SCORING_EVENT_TYPES and event.side is None:
        raise ScoringRefused(
            "team",
            f"a {event.type} on a match no feed covers moves the score: say which team it "
            "counts for (team: home, away, a team id or name)",
        )
    plus = goal_for(event.type, event.side)
    minus = (0, 0)
    if retracted is not None:
        minus = goal_for(
            EventType(retracted["type"]), retracted["side"], shootout=retracted["shootout"]
        )
    home = max(state.home_score + plus[0] - minus[0], 0)
    away = max(state.away_score + plus[1] - minus[1], 0)
    moved = (home, away) != (state.home_score, state.away_score)
    return MatchPatch(
        source=source,
        new_events=(event,),
        retract_event_ids=retract_ids,
        home_score=home if moved else None,
        away_score=away if moved else None,
    )
