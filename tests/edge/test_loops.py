"""The edge's long-running loops under supervision, against real Redis and
PostgreSQL: a loop poisoned by an unexpected error is restarted and keeps
working; what /health reads of the pipeline is refreshed by its own loop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import redis.asyncio as aioredis

from edge.bus import ChangeBus
from edge.watch import PipelineWatch
from livescore import supervise
from livescore.keys import Keys
from livescore.supervise import Loops
from store.db import Conn, Pool
from tests.conftest import Services
from tests.waiting import eventually


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervise, "BACKOFF_FIRST", 0.05)


async def test_a_bus_poisoned_by_a_bug_is_restarted_and_delivers_again(
    services: Services, keys: Keys, redis: aioredis.Redis
) -> None:
    bus = ChangeBus(services.redis_url, keys.changes_channel)
    heard: list[int] = []
    bus.add_listener(lambda message: heard.append(message.seq))
    real_dispatch = bus.dispatch
    poisoned = [True]

    def dispatch(raw: bytes) -> None:
        if poisoned:
            poisoned.clear()
            raise RuntimeError("a bug in dispatch")
        real_dispatch(raw)

    bus.dispatch = dispatch  # type: ignore[method-assign]
    loops = Loops()
    loops.supervise("bus", lambda loop: bus.run(beat=loop.beat), interval=bus.backoff_max)
    try:
        await eventually(lambda: bus.connected)
        message = b'{"type":"score:update","matchId":1,"seq":%d,"data":{},"ts":null}'
        await redis.publish(keys.changes_channel, message % 1)  # kills the bus's run
        await eventually(lambda: loops.loops["bus"].restarts == 1 and bus.connected)
        await redis.publish(keys.changes_channel, message % 2)
        await eventually(lambda: heard == [2])
        (report,) = loops.reports()
        assert report.ok and report.last_error == "RuntimeError: a bug in dispatch"
    finally:
        await bus.stop()
        await loops.stop()


async def test_the_pipeline_watch_survives_an_unexpected_error_and_reads_again(
    pool: Pool, redis: aioredis.Redis, keys: Keys
) -> None:
    failures = [RuntimeError("unexpected")]

    @asynccontextmanager
    async def db() -> AsyncIterator[Conn]:
        if failures:
            raise failures.pop()
        async with pool.connection() as conn:
            yield conn

    watch = PipelineWatch(db, redis, keys)
    loops = Loops()
    loops.supervise("watch", watch.run, interval=2.0)
    try:
        await eventually(lambda: watch.reading.backlog is not None)
        assert loops.loops["watch"].restarts == 1
        assert watch.reading.workers is not None
    finally:
        await loops.stop()
