"""Status automation for matches no provider covers (the scheduled
transitions of the original Live Score API): ``scheduled -> live`` at
kickoff, ``live -> finished`` when the expected duration is over (the
match's ``endTime``, else kickoff + ``LIVESCORE_MATCH_DURATION``).

``transition`` is the pure rule. The worker's sweep schedules a SAQ job per
upcoming transition (job key ``auto:{match}:{status}``, so re-scheduling is
a no-op) and applies any transition already overdue: a job lost to a worker
restart or a Redis flush is repaired by the next sweep. Applying is
idempotent: it goes through the write path with a function of the current
state, which returns nothing unless the match is still where it was.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from livescore.model import IN_PLAY_STATUSES, Clock, MatchPatch, MatchState, MatchStatus, Period

SOURCE = "automation"


def due_at(
    status: MatchStatus, start: datetime, end: datetime | None, duration: timedelta
) -> datetime | None:
    """When an uncovered match in ``status`` moves next (None: it does not)."""
    if status is MatchStatus.SCHEDULED:
        return start
    if status in IN_PLAY_STATUSES:
        return end or start + duration
    return None


def transition(
    status: MatchStatus, start: datetime, end: datetime | None, duration: timedelta, now: datetime
) -> MatchStatus | None:
    """The status an uncovered match should be in at ``now``, if it must move."""
    when = due_at(status, start, end, duration)
    if when is None or now < when:
        return None
    if status is MatchStatus.SCHEDULED:
        # a match whose whole expected duration already passed goes straight to finished
        finish = end or start + duration
        return MatchStatus.FINISHED if now >= finish else MatchStatus.LIVE
    return MatchStatus.FINISHED


def patch_for(
    target: MatchStatus, expected: MatchStatus | None = None
) -> Callable[[MatchState], MatchPatch | None]:
    """A write-path function moving a match to ``target`` if it is still
    before it (``expected``: only from that status)."""

    def make(state: MatchState) -> MatchPatch | None:
        if state.override is not None or state.status is target:
            return None
        if expected is not None and state.status is not expected:
            return None
        if target is MatchStatus.LIVE and state.status is not MatchStatus.SCHEDULED:
            return None
        if target is MatchStatus.FINISHED and state.status not in (
            IN_PLAY_STATUSES | {MatchStatus.SCHEDULED}
        ):
            return None
        clock = (
            Clock(0, None, Period.FIRST_HALF)
            if target is MatchStatus.LIVE
            else Clock(90, None, Period.FULL_TIME)
        )
        return MatchPatch(source=SOURCE, status=target, clock=clock)

    return make
