"""Status automation for matches no provider covers (the scheduled
transitions of the original Live Score API): ``scheduled -> live`` at
kickoff, ``live -> finished`` when the expected duration is over (the
match's ``endTime``, else kickoff + ``LIVESCORE_MATCH_DURATION``). A match
expected to last 90 minutes or more also has a half time (``timeline``):
``halftime`` 45 minutes after kickoff, ``live`` again (second half, 45') 45
minutes before its end, so its running clock (``livescore.matchclock``) reads
0'-45' and 45'-90' and is never frozen.

``transition`` is the pure rule. The worker's sweep schedules a SAQ job per
upcoming transition (job key ``auto:{match}:{status}``, so re-scheduling is
a no-op) and applies any transition already overdue: a job lost to a worker
restart or a Redis flush is repaired by the next sweep. Applying is
idempotent: it goes through the write path with a function of the current
state, which returns nothing unless the match is still where it was. A match
whose status a scorer set over REST (``PATCH /api/matches/{id}``) is the
scorer's: automation no longer moves it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from livescore.matchclock import MINUTE
from livescore.model import (
    IN_PLAY_STATUSES,
    TERMINAL_STATUSES,
    Clock,
    MatchPatch,
    MatchState,
    MatchStatus,
    Period,
)

SOURCE = "automation"
#: the status source of a match whose status a scorer set over REST (PATCH
#: /api/matches/{id}): the scorer runs it from then on, automation stands aside
SCORER_SOURCE = "api"


#: a half of football, and the break between the halves
HALF = timedelta(minutes=45)
BREAK = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Phase:
    """One step of an uncovered match's timeline: from ``at`` it is in ``status``."""

    at: datetime
    status: MatchStatus
    period: Period


def timeline(start: datetime, end: datetime | None, duration: timedelta) -> tuple[Phase, ...]:
    """Kickoff, half time, second half and full time of a match no feed covers.

    The second half ends at the expected end (``endTime``, else kickoff + the
    duration) and lasts 45 minutes; half time runs from 45 minutes after kickoff
    until it starts. A match expected to last under 90 minutes has no half time:
    live from kickoff to its end (the original API's two transitions)."""
    finish = end or start + duration
    if finish - start < 2 * HALF:
        return (
            Phase(start, MatchStatus.LIVE, Period.FIRST_HALF),
            Phase(finish, MatchStatus.FINISHED, Period.FULL_TIME),
        )
    return (
        Phase(start, MatchStatus.LIVE, Period.FIRST_HALF),
        Phase(start + HALF, MatchStatus.HALFTIME, Period.HALFTIME),
        Phase(finish - HALF, MatchStatus.LIVE, Period.SECOND_HALF),
        Phase(finish, MatchStatus.FINISHED, Period.FULL_TIME),
    )


def _reached(status: MatchStatus, period: Period | None, phases: tuple[Phase, ...]) -> int:
    """How many of ``phases`` a match in ``status`` (clock in ``period``) has reached."""
    if status is MatchStatus.SCHEDULED:
        return 0
    if status in TERMINAL_STATUSES:
        return len(phases)
    if len(phases) == 2 or (status is MatchStatus.LIVE and period in (None, Period.FIRST_HALF)):
        return 1
    if status is MatchStatus.HALFTIME:
        return 2
    return 3  # second half, extra time, penalties: only full time is left


def _next(
    status: MatchStatus,
    start: datetime,
    end: datetime | None,
    duration: timedelta,
    period: Period | None,
) -> tuple[Phase, ...]:
    """The phases still ahead of a match (none for statuses automation leaves alone)."""
    if status is not MatchStatus.SCHEDULED and status not in IN_PLAY_STATUSES:
        return ()
    phases = timeline(start, end, duration)
    return phases[_reached(status, period, phases) :]


def due_at(
    status: MatchStatus,
    start: datetime,
    end: datetime | None,
    duration: timedelta,
    period: Period | None = None,
) -> datetime | None:
    """When an uncovered match in ``status`` moves next (None: it does not)."""
    ahead = _next(status, start, end, duration, period)
    return ahead[0].at if ahead else None


def next_status(
    status: MatchStatus,
    start: datetime,
    end: datetime | None,
    duration: timedelta,
    period: Period | None = None,
) -> MatchStatus | None:
    """The status an uncovered match moves to next (the ``auto`` job's target)."""
    ahead = _next(status, start, end, duration, period)
    return ahead[0].status if ahead else None


def transition(
    status: MatchStatus,
    start: datetime,
    end: datetime | None,
    duration: timedelta,
    now: datetime,
    period: Period | None = None,
) -> MatchStatus | None:
    """The status an uncovered match should be in at ``now``, if it must move
    (the latest phase already due: a sweep that comes late skips the ones between)."""
    due = [p for p in _next(status, start, end, duration, period) if p.at <= now]
    return due[-1].status if due else None


def clock_at(
    target: MatchStatus,
    start: datetime,
    end: datetime | None,
    duration: timedelta,
    now: datetime,
) -> Clock:
    """The clock of a match moved to ``target`` at ``now`` (a late move starts the
    half's clock where the timeline is, so the running clock agrees with it)."""
    phases = timeline(start, end, duration)
    if target is MatchStatus.FINISHED:
        return Clock(90, None, Period.FULL_TIME)
    if target is MatchStatus.HALFTIME:
        return Clock(45, None, Period.HALFTIME)
    second = next((p for p in phases if p.period is Period.SECOND_HALF), None)
    if second is not None and now >= second.at:
        return Clock(45 + min(45, (now - second.at) // MINUTE), None, Period.SECOND_HALF)
    return Clock(min(45, max(0, (now - start) // MINUTE)), None, Period.FIRST_HALF)


def _may_move(state: MatchState, target: MatchStatus) -> bool:
    """Whether a match in ``state`` is before ``target`` on its timeline."""
    first_half = state.status is MatchStatus.LIVE and state.clock.period in (
        None,
        Period.FIRST_HALF,
    )
    if target is MatchStatus.LIVE:
        return state.status in (MatchStatus.SCHEDULED, MatchStatus.HALFTIME)
    if target is MatchStatus.HALFTIME:
        return state.status is MatchStatus.SCHEDULED or first_half
    if target is MatchStatus.FINISHED:
        return state.status in IN_PLAY_STATUSES | {MatchStatus.SCHEDULED}
    return False


def _clock_for(state: MatchState, target: MatchStatus) -> Clock:
    """The clock a scheduled ``auto`` job sets (it runs when the phase is due)."""
    if target is MatchStatus.LIVE:
        if state.status is MatchStatus.HALFTIME:
            return Clock(45, None, Period.SECOND_HALF)
        return Clock(0, None, Period.FIRST_HALF)
    if target is MatchStatus.HALFTIME:
        return Clock(45, None, Period.HALFTIME)
    return Clock(90, None, Period.FULL_TIME)


def patch_for(
    target: MatchStatus, expected: MatchStatus | None = None, *, clock: Clock | None = None
) -> Callable[[MatchState], MatchPatch | None]:
    """A write-path function moving a match to ``target`` if it is still
    before it (``expected``: only from that status), with ``clock`` (default:
    the clock at the phase's start)."""

    def make(state: MatchState) -> MatchPatch | None:
        if state.override is not None or state.status is target:
            return None
        if state.status_source == SCORER_SOURCE:
            return None
        if expected is not None and state.status is not expected:
            return None
        if not _may_move(state, target):
            return None
        return MatchPatch(source=SOURCE, status=target, clock=clock or _clock_for(state, target))

    return make
