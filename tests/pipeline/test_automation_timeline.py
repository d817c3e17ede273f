"""Status automation's timeline for matches no feed covers: kickoff, half time,
second half, full time (``pipeline.automation``), so an uncovered match's
running clock never sits frozen; and a worker that runs it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from saq import Queue

from livescore import clock
from livescore.config import Settings
from livescore.model import Clock, MatchState, MatchStatus, Period
from livescore.runtime import Endpoints
from pipeline import automation
from store.db import Conn
from store.matches import get_match
from tests.factories import Factory
from tests.pipeline.test_worker import finished, status_log, workers
from tests.waiting import eventually

K = datetime(2026, 11, 29, 15, 0, tzinfo=UTC)
D = timedelta(minutes=105)  # LIVESCORE_MATCH_DURATION's default
MIN = timedelta(minutes=1)
S = MatchStatus


def test_a_full_length_match_has_half_time_and_a_second_half_ending_at_its_end() -> None:
    assert [(p.at - K, p.status, p.period) for p in automation.timeline(K, None, D)] == [
        (0 * MIN, S.LIVE, Period.FIRST_HALF),
        (45 * MIN, S.HALFTIME, Period.HALFTIME),
        (60 * MIN, S.LIVE, Period.SECOND_HALF),
        (105 * MIN, S.FINISHED, Period.FULL_TIME),
    ]
    end = K + 110 * MIN  # an explicit endTime: the second half still ends there
    assert [p.at - K for p in automation.timeline(K, end, D)] == [
        0 * MIN, 45 * MIN, 65 * MIN, 110 * MIN,
    ]  # fmt: skip


def test_a_short_match_only_goes_live_and_finishes() -> None:
    phases = automation.timeline(K, K + 30 * MIN, D)
    assert [(p.at - K, p.status) for p in phases] == [(0 * MIN, S.LIVE), (30 * MIN, S.FINISHED)]


@pytest.mark.parametrize(
    ("status", "period", "at", "expected"),
    [
        (S.SCHEDULED, None, -1, None),
        (S.SCHEDULED, None, 0, S.LIVE),
        (S.LIVE, Period.FIRST_HALF, 44, None),
        (S.LIVE, Period.FIRST_HALF, 45, S.HALFTIME),
        (S.HALFTIME, Period.HALFTIME, 59, None),
        (S.HALFTIME, Period.HALFTIME, 60, S.LIVE),
        (S.LIVE, Period.SECOND_HALF, 104, None),
        (S.LIVE, Period.SECOND_HALF, 105, S.FINISHED),
        # a late sweep skips to where the timeline is
        (S.SCHEDULED, None, 50, S.HALFTIME),
        (S.SCHEDULED, None, 70, S.LIVE),
        (S.LIVE, Period.FIRST_HALF, 200, S.FINISHED),
        (S.FINISHED, Period.FULL_TIME, 200, None),
        (S.POSTPONED, None, 200, None),
    ],
)
def test_the_transition_due_at_a_moment(
    status: MatchStatus, period: Period | None, at: int, expected: MatchStatus | None
) -> None:
    assert automation.transition(status, K, None, D, K + at * MIN, period) == expected


@pytest.mark.parametrize(
    ("status", "period", "due", "goal"),
    [
        (S.SCHEDULED, None, 0, S.LIVE),
        (S.LIVE, Period.FIRST_HALF, 45, S.HALFTIME),
        (S.HALFTIME, Period.HALFTIME, 60, S.LIVE),
        (S.LIVE, Period.SECOND_HALF, 105, S.FINISHED),
        (S.EXTRA_TIME, Period.EXTRA_TIME, 105, S.FINISHED),
    ],
)
def test_the_next_step_and_when(
    status: MatchStatus, period: Period | None, due: int, goal: MatchStatus
) -> None:
    assert automation.due_at(status, K, None, D, period) == K + due * MIN
    assert automation.next_status(status, K, None, D, period) == goal


def test_a_late_move_starts_the_clock_where_the_timeline_is() -> None:
    def at(target: MatchStatus, minutes: float) -> Clock:
        return automation.clock_at(target, K, None, D, K + minutes * MIN)

    assert at(S.LIVE, 0) == Clock(0, None, Period.FIRST_HALF)
    assert at(S.LIVE, 12.5) == Clock(12, None, Period.FIRST_HALF)
    assert at(S.HALFTIME, 50) == Clock(45, None, Period.HALFTIME)
    assert at(S.LIVE, 60) == Clock(45, None, Period.SECOND_HALF)
    assert at(S.LIVE, 73) == Clock(58, None, Period.SECOND_HALF)
    assert at(S.FINISHED, 200) == Clock(90, None, Period.FULL_TIME)


def state(status: MatchStatus, period: Period | None = None) -> MatchState:
    return MatchState(1, status, 0, 0, K, clock=Clock(45 if period else None, None, period))


def test_a_job_moves_a_match_only_forward_with_the_phase_clock() -> None:
    second_half = automation.patch_for(S.LIVE)(state(S.HALFTIME, Period.HALFTIME))
    assert second_half is not None and second_half.clock == Clock(45, None, Period.SECOND_HALF)
    kickoff = automation.patch_for(S.LIVE)(state(S.SCHEDULED))
    assert kickoff is not None and kickoff.clock == Clock(0, None, Period.FIRST_HALF)
    half_time = automation.patch_for(S.HALFTIME)(state(S.LIVE, Period.FIRST_HALF))
    assert half_time is not None and half_time.clock == Clock(45, None, Period.HALFTIME)
    # a stray half-time job in the second half, a stray kickoff when live: nothing
    assert automation.patch_for(S.HALFTIME)(state(S.LIVE, Period.SECOND_HALF)) is None
    assert automation.patch_for(S.LIVE)(state(S.LIVE, Period.SECOND_HALF)) is None
    assert automation.patch_for(S.LIVE)(state(S.FINISHED, Period.FULL_TIME)) is None


async def test_a_worker_ends_half_time_and_the_second_half_clock_runs(
    pool: Any, conn: Conn, factory: Factory, settings: Settings, endpoints: Endpoints,
    queue: Queue,
) -> None:  # fmt: skip
    # half time is due now and the second half 2 s from now
    kickoff = clock.now() - timedelta(minutes=60) + timedelta(seconds=2)
    match = await factory.match(start_time=kickoff, end_time=kickoff + 105 * MIN)
    async with workers(settings, endpoints, queue, relay=False, cron=False):
        await queue.enqueue("sweep", key="sweep-1", timeout=60)
        (sweep,) = await finished(queue, ["sweep-1"])
        assert sweep.result is not None and sweep.result["automated"] > 0
        assert (await get_match(conn, match["id"]))["status"] == "halftime"
        # the next sweep schedules the second half (or applies it, on a slow machine)
        await queue.enqueue("sweep", key="sweep-2", timeout=60)
        await finished(queue, ["sweep-2"])

        async def second_half() -> bool:
            return bool((await get_match(conn, match["id"]))["status"] == "live")

        check: Callable[[], Any] = second_half
        await eventually(check, 15, "the second half")
    resumed = await get_match(conn, match["id"])
    assert [(s, src) for s, src, _ in await status_log(conn, match["id"])] == [
        ("halftime", "automation"),
        ("live", "automation"),
    ]
    running = resumed["clock"]
    assert (running["minute"], running["period"], running["running"]) == (45, "2H", True)
    assert running["periodStartMinute"] == 45 and running["periodEndMinute"] == 90
