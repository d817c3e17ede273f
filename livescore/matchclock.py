"""The running match clock: what a client needs to tick it between reports.

Feeds report the clock now and then (``minute``, ``addedTime``, ``period``);
in between a client runs it itself. For that a match carries, next to the
reported clock, the time its current period's clock read the period's first
minute (``periodStartedAt``), derived from the reports so that::

    total = periodStartMinute + whole minutes since periodStartedAt
    shown = total                                   while total <= periodEndMinute
          = periodEndMinute + (total - periodEndMinute)  as added time beyond it

(never less than the reported ``minute`` + ``addedTime``). Periods run from
0 to 45 (1H), 45 to 90 (2H), 90 to 105 and 105 to 120 (the two halves of
extra time, told apart by the minute: ET at 106 and later is the second).
The clock runs only while the match is ``live`` or ``extra_time`` in one of
those periods; at half time, full time, penalties, a suspension (any other
status) it is stopped and ``periodStartedAt`` is null.

Rules (``next_start``), all on the writer's clock (the pipeline's: a replay's
recorded, possibly shifted, fetch times, so a replay gives the same values
every time):

* A report in the period the clock already runs in may only move the start
  EARLIER (a report ahead of the tick: the clock jumps forward), never later:
  a lagging feed (its 59' arriving after the tick showed 60') never makes the
  clock go backwards within a period.
* A new period, a clock that was stopped, or an operator's clock (override,
  API: the person at the ground knows best) starts it afresh from the report.

Pure: no I/O; ``tests/store/test_running_clock.py`` holds the tables and
hypothesis properties.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from livescore.model import OVERRIDE_SOURCE, Clock, MatchStatus, Period

#: statuses in which the clock runs (given a running period)
RUNNING_STATUSES: frozenset[MatchStatus] = frozenset({MatchStatus.LIVE, MatchStatus.EXTRA_TIME})
#: sources whose clock is taken as it is (never merged with the running one)
AUTHORITATIVE_SOURCES: frozenset[str] = frozenset({OVERRIDE_SOURCE, "api"})

MINUTE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Span:
    """One period's minutes: the clock reads ``start`` at its kickoff and
    counts added time beyond ``end``."""

    start: int
    end: int


FIRST_HALF = Span(0, 45)
SECOND_HALF = Span(45, 90)
EXTRA_FIRST = Span(90, 105)
EXTRA_SECOND = Span(105, 120)


def span_of(clock: Clock) -> Span | None:
    """The running period ``clock`` is in (None: a stopped period or no minute)."""
    if clock.minute is None:
        return None
    if clock.period is Period.FIRST_HALF:
        return FIRST_HALF
    if clock.period is Period.SECOND_HALF:
        return SECOND_HALF
    if clock.period is Period.EXTRA_TIME:
        # 105+2 is the first half's added time; 106 is the second half
        return EXTRA_SECOND if clock.minute > EXTRA_FIRST.end else EXTRA_FIRST
    return None


def total_minutes(clock: Clock) -> int:
    """Minute plus added time (90+4 -> 94); 0 without a minute."""
    return (clock.minute or 0) + (clock.added_time or 0)


def is_running(status: MatchStatus, clock: Clock) -> bool:
    """Whether the clock runs: an in-play status and a running period."""
    return status in RUNNING_STATUSES and span_of(clock) is not None


def start_from_report(clock: Clock, at: datetime) -> datetime:
    """When the period's clock read its first minute, if ``clock`` was true at ``at``."""
    span = span_of(clock)
    assert span is not None, "only a running period has a start"
    return at - max(0, total_minutes(clock) - span.start) * MINUTE


def next_start(
    *,
    before_status: MatchStatus,
    before_clock: Clock,
    before_start: datetime | None,
    status: MatchStatus,
    clock: Clock,
    at: datetime,
    source: str,
) -> datetime | None:
    """The period start after a write that leaves the match in ``status`` with
    ``clock`` at ``at`` (None: the clock is stopped). See the module's rules."""
    if not is_running(status, clock):
        return None
    reported = start_from_report(clock, at)
    same_period = (
        before_start is not None
        and is_running(before_status, before_clock)
        and span_of(before_clock) == span_of(clock)
    )
    if not same_period or source in AUTHORITATIVE_SOURCES:
        return reported
    assert before_start is not None
    return min(before_start, reported)


def ticked(clock: Clock, started_at: datetime | None, now: datetime) -> Clock:
    """What the clock shows at ``now`` (on the writer's clock): the rule a client
    runs, here for the tests and the docs. A stopped clock shows what it says."""
    span = span_of(clock)
    if started_at is None or span is None:
        return clock
    elapsed = max(0, (now - started_at) // MINUTE)
    total = max(span.start + elapsed, total_minutes(clock))
    if total <= span.end:
        return Clock(total, None, clock.period)
    return Clock(span.end, total - span.end, clock.period)


def clock_document(clock: Clock, started_at: datetime | None) -> dict[str, Any]:
    """The public ``clock`` object: the reported clock plus what ticks it
    (``running``, ``periodStartedAt``, ``periodStartMinute``, ``periodEndMinute``)."""
    span = span_of(clock) if started_at is not None else None
    return {
        **clock.to_json(),
        "running": span is not None,
        "periodStartedAt": started_at.isoformat() if span is not None and started_at else None,
        "periodStartMinute": span.start if span is not None else None,
        "periodEndMinute": span.end if span is not None else None,
    }
