"""The event-loop stall probe (``edge.ws_metrics.StallProbe``): how late its timer
fires is a stall of the loop; the longest of the window is what ``/metrics`` shows
as ``livescore_event_loop_stall_max_seconds``, and every tick beats for the
supervisor. In-process, on a real event loop."""

from __future__ import annotations

import asyncio
import time

import pytest

from edge.ws_metrics import StallProbe
from livescore.supervise import Loop


@pytest.fixture
async def probe() -> StallProbe:
    return StallProbe(every=0.01, window=10.0)


async def running(probe: StallProbe) -> tuple[Loop, asyncio.Task[None]]:
    beat = Loop("loop_probe", 5.0, 3.0)
    task = asyncio.create_task(probe.run(beat))
    await asyncio.sleep(0.05)
    return beat, task


async def test_a_blocked_loop_shows_as_a_stall_of_about_that_long(probe: StallProbe) -> None:
    _, task = await running(probe)
    quiet = probe.recent_max()

    time.sleep(0.15)  # noqa: ASYNC251 (the point: the loop is blocked, the timer cannot fire)
    await asyncio.sleep(0.05)

    assert quiet < 0.1
    assert 0.13 <= probe.recent_max() < 1.0
    task.cancel()


async def test_each_tick_beats_for_the_supervisor(probe: StallProbe) -> None:
    beat, task = await running(probe)
    beat.last_beat = 0.0

    await asyncio.sleep(0.05)

    assert time.monotonic() - beat.last_beat < 0.05
    task.cancel()


async def test_cancelling_the_probe_stops_its_timer(probe: StallProbe) -> None:
    _, task = await running(probe)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    time.sleep(0.1)  # noqa: ASYNC251 (a timer still armed would fire 0.09 s late)
    await asyncio.sleep(0.05)

    assert probe.recent_max() < 0.05


async def test_a_tick_that_fails_ends_the_run_for_the_supervisor_to_restart(
    probe: StallProbe, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(late: float, now: float) -> None:
        raise RuntimeError("broken histogram")

    monkeypatch.setattr(probe, "record", broken)
    beat = Loop("loop_probe", 5.0, 3.0)

    with pytest.raises(RuntimeError, match="broken histogram"):
        await asyncio.wait_for(probe.run(beat), 5)
