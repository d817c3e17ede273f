"""The event-loop stall probe (``edge.ws_metrics.StallProbe``): how late its timer
fires is a stall of the loop; the longest of the window is what ``/metrics`` shows
as ``livescore_event_loop_stall_max_seconds``, and every tick beats for the
supervisor. It ticks every ``every`` while the worker is busy (on the CPU, late,
or woken by the hub or the door) and every ``quiet_every`` while it is quiet. In
process, on a real event loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from edge.ws_metrics import StallProbe
from livescore.supervise import Loop
from pipeline.relay import Relay
from store.db import Conn
from tests.edge.conftest import EdgeNode
from tests.factories import Factory
from tests.ws.conftest import EdgeFactory, raw_upgrade
from tests.ws.helpers import metric
from tests.ws.test_hub import score


@pytest.fixture
async def probe() -> StallProbe:
    return StallProbe(every=0.01, window=10.0, quiet_every=0.2)


async def running(probe: StallProbe) -> tuple[Loop, asyncio.Task[None]]:
    beat = Loop("loop_probe", 5.0, 3.0)
    task = asyncio.create_task(probe.run(beat))
    await asyncio.sleep(0.05)
    return beat, task


async def test_a_blocked_loop_shows_as_a_stall_of_about_that_long(probe: StallProbe) -> None:
    _, task = await running(probe)
    quiet = probe.recent_max()

    probe.wake()  # work comes (a change, an upgrade) ...
    time.sleep(0.15)  # noqa: ASYNC251 (... and blocks the loop: the timer cannot fire)
    await asyncio.sleep(0.05)

    assert quiet < 0.1
    assert 0.13 <= probe.recent_max() < 1.0
    task.cancel()


async def test_each_tick_beats_for_the_supervisor_quiet_or_not(probe: StallProbe) -> None:
    beat, task = await running(probe)
    beat.last_beat = 0.0

    await asyncio.sleep(0.3)  # quiet by now: a tick every 0.2 s

    assert time.monotonic() - beat.last_beat < 0.25
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


async def quiet(probe: StallProbe) -> None:
    for _ in range(100):
        await asyncio.sleep(0.01)
        if probe.quiet:
            return
    raise AssertionError("the probe never went quiet on an idle loop")


async def test_a_quiet_worker_ticks_every_quiet_every_not_every(probe: StallProbe) -> None:
    _, task = await running(probe)
    await quiet(probe)
    ticks = probe.ticks

    await asyncio.sleep(0.5)

    assert probe.quiet
    assert 1 <= probe.ticks - ticks <= 4  # every 0.2 s (every 0.01 s would be 50)
    task.cancel()


async def test_waking_a_quiet_probe_brings_its_next_tick_within_every(probe: StallProbe) -> None:
    _, task = await running(probe)
    await quiet(probe)
    ticks = probe.ticks

    probe.wake()
    await asyncio.sleep(0.05)

    assert probe.ticks - ticks >= 1
    task.cancel()


async def test_a_worker_busy_on_the_cpu_keeps_the_probe_ticking_fast(probe: StallProbe) -> None:
    _, task = await running(probe)
    await quiet(probe)
    ticks = probe.ticks

    until = time.monotonic() + 0.6
    while time.monotonic() < until:  # short callbacks, no stall: the CPU busy half the time
        spin = time.thread_time() + 0.002
        while time.thread_time() < spin:
            pass
        await asyncio.sleep(0.002)

    assert not probe.quiet
    assert probe.ticks - ticks >= 15  # every 0.01 s once it saw the CPU (quiet: 3)
    assert probe.recent_max() < 0.1
    task.cancel()


async def test_a_stall_on_a_quiet_worker_shows_at_most_quiet_every_short(
    probe: StallProbe,
) -> None:
    _, task = await running(probe)
    await quiet(probe)

    time.sleep(0.45)  # noqa: ASYNC251 (nothing woke the probe: it learns from the lateness)
    await asyncio.sleep(0.05)

    assert 0.45 - 0.2 - 0.02 <= probe.recent_max() < 1.0
    task.cancel()


# -- on a real edge node: what wakes it --------------------------------------------------

TICKS = "livescore_event_loop_probe_ticks_total"


async def ticks_during(
    node: EdgeNode, seconds: float, work: Callable[[], Awaitable[None]]
) -> float:
    """The probe's ticks on ``node`` while ``work`` runs for about ``seconds``."""
    before = await asyncio.to_thread(metric, node, TICKS)
    await asyncio.gather(work(), asyncio.sleep(seconds))
    return await asyncio.to_thread(metric, node, TICKS) - before


async def test_an_idle_node_probe_ticks_at_the_quiet_pace(edges: EdgeFactory) -> None:
    node = edges(1)[0]
    await asyncio.sleep(1.0)  # past startup

    async def nothing() -> None:
        return None

    ticks = await ticks_during(node, 2.0, nothing)

    # every 0.1 s quiet (20), a few fast ones after each second's /health reading;
    # at 20 ms it would be 100
    assert ticks <= 40


async def test_upgrades_at_the_door_wake_the_probe(edges: EdgeFactory) -> None:
    node = edges(1)[0]
    await asyncio.sleep(1.0)
    writers: list[asyncio.StreamWriter] = []

    async def upgrades() -> None:
        for _ in range(40):
            writers.append((await raw_upgrade(node.port))[1])
            await asyncio.sleep(0.025)

    ticks = await ticks_during(node, 1.0, upgrades)

    for writer in writers:
        writer.close()
    assert ticks >= 30  # a tick within 20 ms of each (quiet: about 10)


async def test_changes_coming_wake_the_probe(
    edges: EdgeFactory, relay: Relay, factory: Factory, conn: Conn
) -> None:
    node = edges(1)[0]
    match_id = int((await factory.match())["id"])
    await asyncio.sleep(1.0)

    async def changes() -> None:
        for home in range(1, 41):
            await score(conn, match_id, home)
            await asyncio.sleep(0.025)

    ticks = await ticks_during(node, 1.0, changes)

    assert ticks >= 30  # a tick within 20 ms of each (quiet: about 10)
