"""The running clock (``livescore.matchclock``): what a client ticks the match
clock with between reports, the rules that move it, and the write path that
stores and publishes it (provider report, operator override, replayed time)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livescore.matchclock import (
    EXTRA_FIRST,
    EXTRA_SECOND,
    FIRST_HALF,
    SECOND_HALF,
    Span,
    clock_document,
    is_running,
    next_start,
    span_of,
    ticked,
)
from livescore.model import Clock, MatchPatch, MatchState, MatchStatus, Period
from pipeline import overrides
from store.db import Conn
from store.matches import get_match
from store.write_plan import plan
from store.writes import apply_change
from tests.factories import Factory

T0 = datetime(2026, 11, 29, 15, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
S = MatchStatus


@pytest.mark.parametrize(
    ("clock", "span"),
    [
        (Clock(0, None, Period.FIRST_HALF), FIRST_HALF),
        (Clock(45, 3, Period.FIRST_HALF), FIRST_HALF),
        (Clock(46, None, Period.SECOND_HALF), SECOND_HALF),
        (Clock(90, 6, Period.SECOND_HALF), SECOND_HALF),
        (Clock(91, None, Period.EXTRA_TIME), EXTRA_FIRST),
        (Clock(105, 2, Period.EXTRA_TIME), EXTRA_FIRST),
        (Clock(106, None, Period.EXTRA_TIME), EXTRA_SECOND),
        (Clock(45, None, Period.HALFTIME), None),
        (Clock(90, None, Period.FULL_TIME), None),
        (Clock(120, None, Period.PENALTIES), None),
        (Clock(None, None, Period.FIRST_HALF), None),
        (Clock(), None),
    ],
)
def test_periods_start_at_0_45_90_and_105(clock: Clock, span: Span | None) -> None:
    assert span_of(clock) == span


@pytest.mark.parametrize("status", list(MatchStatus))
def test_the_clock_runs_only_live_or_in_extra_time(status: MatchStatus) -> None:
    expected = status in (S.LIVE, S.EXTRA_TIME)
    assert is_running(status, Clock(30, None, Period.FIRST_HALF)) is expected


def start(
    clock: Clock,
    at: datetime,
    *,
    before: tuple[MatchStatus, Clock, datetime | None] = (S.SCHEDULED, Clock(), None),
    status: MatchStatus = S.LIVE,
    source: str = "fd",
) -> datetime | None:
    return next_start(
        before_status=before[0],
        before_clock=before[1],
        before_start=before[2],
        status=status,
        clock=clock,
        at=at,
        source=source,
    )


def test_a_report_gives_the_time_the_period_clock_read_its_first_minute() -> None:
    assert start(Clock(0, None, Period.FIRST_HALF), T0) == T0
    assert start(Clock(58, None, Period.SECOND_HALF), T0) == T0 - 13 * MIN
    assert start(Clock(45, 2, Period.FIRST_HALF), T0) == T0 - 47 * MIN
    assert start(Clock(90, 4, Period.SECOND_HALF), T0) == T0 - 49 * MIN
    assert start(Clock(100, None, Period.EXTRA_TIME), T0) == T0 - 10 * MIN
    assert start(Clock(110, None, Period.EXTRA_TIME), T0) == T0 - 5 * MIN


def test_a_stopped_clock_has_no_start() -> None:
    for status in (S.HALFTIME, S.FINISHED, S.SUSPENDED, S.PENALTIES, S.SCHEDULED):
        assert start(Clock(45, None, Period.FIRST_HALF), T0, status=status) is None
    assert start(Clock(45, None, Period.HALFTIME), T0) is None


def test_a_lagging_report_never_moves_the_clock_back_but_one_ahead_moves_it_on() -> None:
    running = (S.LIVE, Clock(60, None, Period.SECOND_HALF), T0 - 15 * MIN)
    # at T0+2' the tick shows 62'; a feed still saying 61' changes nothing
    assert start(Clock(61, None, Period.SECOND_HALF), T0 + 2 * MIN, before=running) == running[2]
    # a feed saying 64' at T0+2' is ahead of the tick: the clock jumps forward
    ahead = start(Clock(64, None, Period.SECOND_HALF), T0 + 2 * MIN, before=running)
    assert ahead == T0 - 17 * MIN


def test_a_new_period_or_a_resumed_clock_starts_afresh() -> None:
    first_half = (S.LIVE, Clock(45, 3, Period.FIRST_HALF), T0 - 48 * MIN)
    assert start(Clock(46, None, Period.SECOND_HALF), T0, before=first_half) == T0 - MIN
    suspended = (S.SUSPENDED, Clock(70, None, Period.SECOND_HALF), None)
    assert start(Clock(70, None, Period.SECOND_HALF), T0, before=suspended) == T0 - 25 * MIN


@pytest.mark.parametrize("source", ["override", "api"])
def test_an_operator_clock_is_taken_as_it_is_even_behind_the_tick(source: str) -> None:
    running = (S.LIVE, Clock(60, None, Period.SECOND_HALF), T0 - 15 * MIN)
    got = start(Clock(55, None, Period.SECOND_HALF), T0, before=running, source=source)
    assert got == T0 - 10 * MIN


def test_the_tick_counts_whole_minutes_and_runs_into_added_time() -> None:
    clock = Clock(44, None, Period.FIRST_HALF)
    started = T0 - 44 * MIN
    assert ticked(clock, started, T0 + 59 * timedelta(seconds=1)) == clock
    assert ticked(clock, started, T0 + MIN) == Clock(45, None, Period.FIRST_HALF)
    assert ticked(clock, started, T0 + 4 * MIN) == Clock(45, 3, Period.FIRST_HALF)
    assert ticked(Clock(95, None, Period.EXTRA_TIME), T0 - 5 * MIN, T0 + 12 * MIN) == Clock(
        105, 2, Period.EXTRA_TIME
    )
    # a stopped clock shows what it says; an early "now" never shows less than reported
    assert ticked(Clock(45, 2, Period.HALFTIME), None, T0 + 9 * MIN) == Clock(
        45, 2, Period.HALFTIME
    )
    assert ticked(clock, started, T0 - 10 * MIN) == clock


def test_the_document_adds_the_tick_fields_and_keeps_the_reported_ones() -> None:
    assert clock_document(Clock(58, None, Period.SECOND_HALF), T0) == {
        "minute": 58,
        "addedTime": None,
        "period": "2H",
        "running": True,
        "periodStartedAt": T0.isoformat(),
        "periodStartMinute": 45,
        "periodEndMinute": 90,
    }
    assert clock_document(Clock(45, None, Period.HALFTIME), None) == {
        "minute": 45,
        "addedTime": None,
        "period": "HT",
        "running": False,
        "periodStartedAt": None,
        "periodStartMinute": None,
        "periodEndMinute": None,
    }


# -- properties ------------------------------------------------------------------------------

periods = st.sampled_from([Period.FIRST_HALF, Period.SECOND_HALF, Period.EXTRA_TIME])


@st.composite
def report_runs(draw: st.DrawFn) -> tuple[Period, list[tuple[int, int]]]:
    """One period's feed reports: (seconds after T0, reported total minute), any
    order of minutes (feeds lag, repeat, jump), times increasing."""
    period = draw(periods)
    low = {Period.FIRST_HALF: 0, Period.SECOND_HALF: 45, Period.EXTRA_TIME: 90}[period]
    high = {Period.FIRST_HALF: 60, Period.SECOND_HALF: 105, Period.EXTRA_TIME: 105}[period]
    gaps = draw(st.lists(st.integers(1, 400), min_size=1, max_size=15))
    minutes = draw(st.lists(st.integers(low, high), min_size=len(gaps), max_size=len(gaps)))
    times = [sum(gaps[: n + 1]) for n in range(len(gaps))]
    return period, list(zip(times, minutes, strict=True))


def as_clock(period: Period, total: int) -> Clock:
    end = {Period.FIRST_HALF: 45, Period.SECOND_HALF: 90, Period.EXTRA_TIME: 105}[period]
    return Clock(min(total, end), total - end if total > end else None, period)


def shown(clock: Clock) -> int:
    return (clock.minute or 0) + (clock.added_time or 0)


@given(run=report_runs(), probe=st.integers(0, 59))
def test_within_a_period_the_tick_never_goes_backward(
    run: tuple[Period, list[tuple[int, int]]], probe: int
) -> None:
    """Whatever the feed reports (lagging, repeated, jumping), the shown minute
    at any later moment is never below what it was, and never below a report."""
    period, reports = run
    status_clock: tuple[MatchStatus, Clock, datetime | None] = (S.SCHEDULED, Clock(), None)
    last_shown = -1
    for n, (seconds, total) in enumerate(reports):
        at = T0 + timedelta(seconds=seconds)
        clock = as_clock(period, total)
        if span_of(clock) != span_of(status_clock[1]) and status_clock[2] is not None:
            last_shown = -1  # an extra-time report may start its second half
        started = start(clock, at, before=status_clock)
        later = reports[n + 1][0] if n + 1 < len(reports) else seconds + probe
        for moment in (at, T0 + timedelta(seconds=min(seconds + probe, later))):
            now_shown = shown(ticked(clock, started, moment))
            assert now_shown >= last_shown
            assert now_shown >= total
            last_shown = now_shown
        status_clock = (S.LIVE, clock, started)


@given(
    period=periods,
    truth=st.integers(0, 14 * 60),
    polls=st.lists(st.integers(1, 240), min_size=1, max_size=10),
)
def test_an_accurate_feed_gives_a_tick_that_matches_it_at_every_report(
    period: Period, truth: int, polls: list[int]
) -> None:
    """A feed reporting the true minute (whole minutes elapsed) whenever polled:
    the tick agrees with every report at its time."""
    base = {Period.FIRST_HALF: 0, Period.SECOND_HALF: 45, Period.EXTRA_TIME: 90}[period]
    kickoff = T0 - timedelta(seconds=truth)
    before: tuple[MatchStatus, Clock, datetime | None] = (S.SCHEDULED, Clock(), None)
    at = T0
    for gap in polls:
        at += timedelta(seconds=gap)
        total = base + int((at - kickoff) // MIN)
        clock = as_clock(period, total)
        if period is Period.EXTRA_TIME and span_of(clock) == EXTRA_SECOND:
            return  # the second half of extra time has its own kickoff
        started = start(clock, at, before=before)
        assert shown(ticked(clock, started, at)) == total
        before = (S.LIVE, clock, started)


# -- the write path: plan, then PostgreSQL --------------------------------------------------


def test_the_plan_stores_the_start_and_every_clock_payload_carries_it() -> None:
    state = MatchState(
        1, S.LIVE, 0, 0, T0, seq=3, clock=Clock(20, None, Period.FIRST_HALF),
        clock_started_at=T0 - 20 * MIN,
    )  # fmt: skip
    to_ht = plan(
        state, MatchPatch("fd", status=S.HALFTIME, clock=Clock(45, 2, Period.HALFTIME)), T0
    )
    assert to_ht.sets["clock_started_at"] is None
    assert [c.payload["clock"]["running"] for c in to_ht.changes] == [False, False]
    lagging = plan(state, MatchPatch("fd", clock=Clock(21, None, Period.FIRST_HALF)), T0 + 5 * MIN)
    assert "clock_started_at" not in lagging.sets  # the tick already shows 25'
    (change,) = lagging.changes
    assert change.payload["clock"]["periodStartedAt"] == (T0 - 20 * MIN).isoformat()
    assert (
        plan(state, MatchPatch("fd", home_score=1, away_score=0), T0)
        .changes[0]
        .payload["clock"]["periodStartedAt"]
        == (T0 - 20 * MIN).isoformat()
    )


async def test_a_provider_report_on_the_pipeline_clock_is_what_reads_and_changes_show(
    conn: Conn, factory: Factory
) -> None:
    """Ingest and replay pass the recorded (possibly shifted) fetch time as ``at``:
    the start is derived from it, not from the wall clock, so a replay gives the
    same values every time."""
    match = await factory.match()
    recorded = datetime(2031, 5, 1, 20, 15, tzinfo=UTC)  # a replay's virtual time
    changes = await apply_change(
        conn,
        match["id"],
        MatchPatch("fd", status=S.LIVE, clock=Clock(58, None, Period.SECOND_HALF)),
        at=recorded,
    )
    expected = (recorded - 13 * MIN).isoformat()
    assert {c.payload["clock"]["periodStartedAt"] for c in changes} == {expected}
    read = await get_match(conn, match["id"])
    assert read["clock"] == changes[-1].payload["clock"]
    assert read["clock"]["periodStartMinute"] == 45 and read["clock"]["running"] is True


async def test_an_override_stops_and_restarts_the_clock(conn: Conn, factory: Factory) -> None:
    match = await factory.match()
    kickoff = await apply_change(
        conn,
        match["id"],
        MatchPatch("fd", status=S.LIVE, clock=Clock(70, None, Period.SECOND_HALF)),
    )
    assert kickoff[-1].payload["clock"]["running"] is True
    stopped = await overrides.set_status(conn, match["id"], S.SUSPENDED, who="ops", reason="fog")
    assert stopped[0].type == "match:status"
    assert stopped[0].payload["clock"]["periodStartedAt"] is None
    assert (await get_match(conn, match["id"]))["clock"]["running"] is False
    resumed = await overrides.set_status(conn, match["id"], S.LIVE, who="ops", reason="clear")
    assert resumed[0].type == "match:status" and resumed[0].created_at is not None
    clock = resumed[0].payload["clock"]
    assert clock["running"] is True and clock["minute"] == 70
    # it resumes at 70' when the override is made: 25 minutes into the second half
    restarted = datetime.fromisoformat(clock["periodStartedAt"])
    assert restarted == resumed[0].created_at - 25 * MIN
    assert (await get_match(conn, match["id"]))["clock"] == clock
