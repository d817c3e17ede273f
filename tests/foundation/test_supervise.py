"""Supervised loops: a crash is logged with its traceback and the loop restarts
with backoff; a loop that stops beating is reported stuck within its grace."""

from __future__ import annotations

import asyncio
import logging

import pytest

from livescore import supervise
from livescore.supervise import Loop, Loops
from tests.waiting import eventually


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervise, "BACKOFF_FIRST", 0.01)


async def test_a_crashing_loop_is_logged_with_its_traceback_and_restarted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs: list[int] = []

    async def body(loop: Loop) -> None:
        runs.append(1)
        if len(runs) < 3:
            raise RuntimeError(f"poisoned run {len(runs)}")
        while True:
            loop.beat()
            await asyncio.sleep(0.01)

    loops = Loops()
    with caplog.at_level(logging.ERROR, logger="livescore.supervise"):
        loops.supervise("relay", body, interval=0.05)
        await eventually(lambda: len(runs) >= 3, 2, "the third run")
    try:
        assert len(runs) == 3
        crashed = [r for r in caplog.records if "loop.crashed" in r.getMessage()]
        assert len(crashed) == 2
        assert all(r.exc_info and r.exc_info[0] is RuntimeError for r in crashed)
        (report,) = loops.reports()
        assert report.ok and report.restarts == 2
        assert report.last_error == "RuntimeError: poisoned run 2"
    finally:
        await loops.stop()


async def test_a_loop_that_stops_beating_is_reported_stuck_and_ok_again_when_it_beats() -> None:
    release = asyncio.Event()

    async def body(loop: Loop) -> None:
        await release.wait()  # stuck: no beat
        while True:
            loop.beat()
            await asyncio.sleep(0.01)

    loops = Loops()
    loops.supervise("tick", body, interval=1.0, grace=2.0)
    try:
        assert loops.stuck() == []
        loops.loops["tick"].last_beat -= 2.5  # as if 2.5 s passed without a beat
        (stuck,) = loops.stuck()
        assert stuck.name == "tick" and stuck.age >= 2.5
        release.set()
        await eventually(lambda: loops.stuck() == [], 2, "a beat")
    finally:
        await loops.stop()


async def test_a_finished_or_stopped_loop_is_no_longer_reported() -> None:
    async def body(loop: Loop) -> None:
        return None

    loops = Loops()
    loops.supervise("once", body, interval=1.0)
    await eventually(lambda: not loops.reports()[0].ok, 2, "the loop to end")
    (report,) = loops.reports()
    assert not report.ok  # ended: nothing beats for it any more
    await loops.stop()
    assert loops.reports() == []
