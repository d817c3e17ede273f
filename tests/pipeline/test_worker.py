"""Real SAQ workers (``pipeline.worker.build_worker``), two at a time, as asyncio
tasks in the test process, on real Redis and Postgres.

Feeds are football-data feeds whose HTTP is mocked with respx, or ``fixture``
feeds answering from a shipped recording. Status automation runs on matches
created through the store with no provider coverage.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
import redis.asyncio as aioredis
import respx
from saq import Queue
from saq.job import Job, Status

from livescore import clock
from livescore.config import Settings
from livescore.feeds import FeedConfig
from livescore.keys import Keys
from livescore.model import MatchStatus
from livescore.runtime import Endpoints
from pipeline.context import PipelineContext
from pipeline.worker import build_worker, make_queue
from providers.http import FeedClient
from store import crosswalk
from store.changes import changes_since
from store.db import Conn
from store.feeds import add_feed
from store.matches import get_match
from tests.conftest import Services
from tests.factories import Factory
from tests.pipeline.builders import assert_seqs_gap_free, fd_list, fd_match, observation_rows
from tests.pipeline.conftest import FIXTURES, make_settings
from tests.waiting import eventually


class RunningWorker:
    """``build_worker(...)`` started as a task; ``stop()`` is a graceful shutdown."""

    def __init__(
        self, settings: Settings, endpoints: Endpoints, queue: Queue, **options: Any
    ) -> None:
        # every job of these tests is over before a stop: no need to wait 10 s for stragglers
        options.setdefault("shutdown_grace_s", 1)
        self.worker = build_worker(settings, endpoints, queue, **options)
        self.task: asyncio.Task[None] = asyncio.create_task(self.worker.start())

    async def started(self) -> None:
        await eventually(lambda: "pipeline" in self.worker.context, what="worker startup")

    async def stop(self) -> None:
        if not self.task.done():
            self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self.task, 30)


@contextlib.asynccontextmanager
async def workers(
    settings: Settings, endpoints: Endpoints, queue: Queue, n: int = 2, **options: Any
) -> AsyncIterator[list[RunningWorker]]:
    running = [RunningWorker(settings, endpoints, queue, **options) for _ in range(n)]
    try:
        for worker in running:
            await worker.started()
        yield running
    finally:
        await asyncio.gather(*(worker.stop() for worker in running))


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> list[FeedClient]:
    """Every FeedClient the workers build (to count the requests they really sent)."""
    made: list[FeedClient] = []
    original = PipelineContext.client_for

    def client_for(self: PipelineContext, feed: FeedConfig) -> FeedClient:
        client = original(self, feed)
        if all(client is not seen for seen in made):
            made.append(client)
        return client

    monkeypatch.setattr(PipelineContext, "client_for", client_for)
    return made


async def finished(queue: Queue, keys: list[str]) -> list[Job]:
    jobs: list[Job] = []

    async def done() -> bool:
        jobs[:] = [job for job in await queue.jobs(keys) if job is not None]
        return len(jobs) == len(keys) and all(j.status == Status.COMPLETE for j in jobs)

    await eventually(done, 30, f"jobs {keys} to complete")
    return jobs


async def claims(redis: aioredis.Redis, keys: Keys) -> dict[str, str]:
    """The poll-slot claims the workers took: claim key -> owner."""
    out: dict[str, str] = {}
    async for key in redis.scan_iter(match=keys.lock("poll:*")):
        owner = await redis.get(key)
        out[key.decode()] = owner.decode() if owner else ""
    return out


# -- two workers, one feed: one poll per slot, one application per observation --------------

FD = {"fd-a": "http://fd-a.test", "fd-b": "http://fd-b.test"}
CITY, UNITED = (65, "Manchester City FC"), (66, "Manchester United FC")


def story(kickoff: datetime) -> list[str]:
    """A match as football-data tells it, one body per request."""
    states: list[tuple[MatchStatus, tuple[int, int], int | None]] = [
        (MatchStatus.LIVE, (0, 0), 10),
        (MatchStatus.LIVE, (1, 0), 20),
        (MatchStatus.LIVE, (1, 0), 30),
        (MatchStatus.HALFTIME, (1, 0), None),
        (MatchStatus.LIVE, (1, 1), 60),
        (MatchStatus.FINISHED, (2, 1), None),
    ]
    return [
        fd_list(fd_match(7001, CITY, UNITED, status=s, score=sc, kickoff=kickoff, minute=m))
        for s, sc, m in states
    ]


async def test_two_workers_poll_each_feed_once_per_slot_and_apply_each_observation_once(
    pool: Any, conn: Conn, settings: Settings, endpoints: Endpoints, queue: Queue,
    keys: Keys, redis: aioredis.Redis,
) -> None:  # fmt: skip
    for priority, (name, base) in enumerate(FD.items(), start=1):
        await add_feed(conn, FeedConfig(name=name, kind="football-data", base_url=base,
                                        priority=priority * 10))  # fmt: skip
    bodies = story(clock.now().replace(microsecond=0) - timedelta(minutes=100))
    served = dict.fromkeys(FD, 0)

    def answer(name: str) -> Callable[[httpx.Request], httpx.Response]:
        def respond(request: httpx.Request) -> httpx.Response:
            body = bodies[min(served[name], len(bodies) - 1)]
            served[name] += 1
            return httpx.Response(200, text=body)

        return respond

    slots = range(1, len(story(clock.now())) + 1)
    with respx.mock(assert_all_called=True) as mock:
        routes = {name: mock.get(f"{base}/v4/matches").mock(side_effect=answer(name))
                  for name, base in FD.items()}  # fmt: skip
        async with workers(settings, endpoints, queue, relay=False, cron=False):
            for slot in slots:
                # each slot's poll is enqueued twice (a duplicated tick, a re-delivered
                # job): both workers race for the same feed and the same match
                round_keys: list[str] = []
                for name in FD:
                    for suffix in ("", ":again"):
                        key = f"poll:{name}:today:{slot}{suffix}"
                        await queue.enqueue("poll", key=key, feed=name, purpose="today",
                                            slot=slot, timeout=60, retries=3)  # fmt: skip
                        round_keys.append(key)
                jobs = await finished(queue, round_keys)
                results = sorted(orjson.dumps(job.result).decode() for job in jobs)
                assert sum('"skipped"' in r for r in results) == len(FD), results

    assert {name: route.call_count for name, route in routes.items()} == dict.fromkeys(
        FD, len(slots)
    )
    taken = await claims(redis, keys)
    assert len(taken) == len(FD) * len(slots)
    assert all(owner for owner in taken.values())

    match_id = await crosswalk.lookup(conn, "match", "football-data", "7001")
    assert match_id is not None
    rows = await observation_rows(conn)
    for name in FD:
        mine = [r for r in rows if r["feed"] == name]
        # one row per distinct body the feed served, never one per poll
        assert len(mine) == len({r["fingerprint"] for r in mine}) == len(slots), name
        assert all(r["outcome"] != "pending" for r in mine)
    await assert_seqs_gap_free(conn)
    match = await get_match(conn, match_id)
    assert (match["status"], match["homeScore"], match["awayScore"]) == ("finished", 2, 1)
    statuses = [c.payload["status"] for c in await changes_since(conn, match_id, 0)
                if c.type == "match:status"]  # fmt: skip
    assert statuses == ["live", "halftime", "live", "finished"]


async def test_a_tick_repeated_within_one_slot_does_not_poll_the_feed_again(
    pool: Any, conn: Conn, settings: Settings, endpoints: Endpoints, queue: Queue,
    keys: Keys, redis: aioredis.Redis,
) -> None:  # fmt: skip
    # idle cadence of a day: every tick in this test falls in one slot
    await add_feed(conn, FeedConfig(name="fd-a", kind="football-data", base_url=FD["fd-a"],
                                    poll_live_s=60, poll_idle_s=86400))  # fmt: skip
    if clock.now().timestamp() % 86400 > 86400 - 30:
        pytest.skip("too close to midnight UTC, where the day's slot ends")
    later = fd_match(7002, CITY, UNITED, kickoff=clock.now() + timedelta(hours=5))
    with respx.mock(assert_all_called=True) as mock:
        route = mock.get(f"{FD['fd-a']}/v4/matches").mock(
            return_value=httpx.Response(200, text=fd_list(later))
        )
        async with workers(settings, endpoints, queue, relay=False, cron=False):
            for n in range(3):
                await queue.enqueue("tick", key=f"tick-{n}", timeout=30)
                (tick,) = await finished(queue, [f"tick-{n}"])
                assert tick.result is not None
                assert len(tick.result["enqueued"]) == (1 if n == 0 else 0), tick.result
                for key in tick.result["enqueued"]:
                    await finished(queue, [key])
            # a poll job enqueued again under the same key after the first finished
            # (what a tick without the claim check would do) is refused by the claim
            (key,) = (await queue.job("tick-0")).result["enqueued"]  # type: ignore[union-attr]
            await queue.enqueue("poll", key=key, feed="fd-a", purpose="today",
                                slot=int(key.rsplit(":", 1)[1]), timeout=60)  # fmt: skip
            (again,) = await finished(queue, [key])
            assert again.result == {"skipped": "slot already polled"}
    assert route.call_count == 1
    assert len(await claims(redis, keys)) == 1


async def test_workers_on_cron_ticks_poll_a_fixture_feed_once_per_slot(
    pool: Any, conn: Conn, services: Services, endpoints: Endpoints, queue: Queue,
    keys: Keys, redis: aioredis.Redis, clients: list[FeedClient],
) -> None:  # fmt: skip
    settings = make_settings(services, keys.prefix)
    await add_feed(
        conn,
        FeedConfig(
            name="pl-fd",
            kind="fixture",
            base_url=f"{FIXTURES / 'premier-league-matchday'}#football-data",
            poll_live_s=1,
            poll_idle_s=2,
        ),
    )
    async with workers(settings, endpoints, queue, relay=True, cron=True):
        # the cron fires every 5 s: wait for two ticks' polls
        await eventually(lambda: _polls(clients) >= 2, 20, "two ticks' polls")
        # polls still in flight land now; no event marks the last one
        await asyncio.sleep(0.5)
        taken = await claims(redis, keys)
        polls = _polls(clients)
    assert polls == len(taken) >= 2  # one request per claimed slot, whichever worker
    assert len({key.rsplit(":", 1)[1] for key in taken}) == len(taken)
    rows = await observation_rows(conn, "pl-fd")
    assert len(rows) == 3  # three matches, each said once however often it was polled
    assert {r["status"] for r in rows} == {"scheduled"}
    await assert_seqs_gap_free(conn)


def _polls(clients: list[FeedClient]) -> int:
    return sum(client.stats.requests for client in clients)


# -- status automation -----------------------------------------------------------------------


async def status_log(conn: Conn, match_id: int) -> list[tuple[str, str | None, datetime | None]]:
    return [
        (c.payload["status"], c.source, c.created_at)
        for c in await changes_since(conn, match_id, 0)
        if c.type == "match:status"
    ]


async def test_an_uncovered_match_goes_live_at_kickoff_and_finishes_at_its_end_time(
    pool: Any, conn: Conn, factory: Factory, settings: Settings, endpoints: Endpoints,
    queue: Queue,
) -> None:  # fmt: skip
    # fractions of a second on purpose: SAQ schedules in whole seconds
    kickoff = clock.now().replace(microsecond=900_000) + timedelta(seconds=2)
    end = kickoff + timedelta(seconds=2)
    match = await factory.match(start_time=kickoff, end_time=end)
    async with workers(settings, endpoints, queue, relay=False, cron=False):
        await queue.enqueue("sweep", key="sweep-1", timeout=60)
        (sweep,) = await finished(queue, ["sweep-1"])
        assert sweep.result == {"reconciled": 0, "automated": 0, "scheduled": 1}
        await eventually(_status_is(conn, match["id"], "live"), 10, "kickoff")

        await queue.enqueue("sweep", key="sweep-2", timeout=60)
        (sweep,) = await finished(queue, ["sweep-2"])
        assert sweep.result == {"reconciled": 0, "automated": 0, "scheduled": 1}
        await eventually(_status_is(conn, match["id"], "finished"), 10, "full time")

        # automation is idempotent: a stray transition job changes nothing
        await queue.enqueue("auto", key="stray", match_id=match["id"], target="live")
        (stray,) = await finished(queue, ["stray"])
        assert stray.result == {"changes": 0}

    log = await status_log(conn, match["id"])
    assert [(status, source) for status, source, _ in log] == [
        ("live", "automation"),
        ("finished", "automation"),
    ]
    (_, _, went_live), (_, _, full_time) = log
    assert went_live is not None and went_live >= kickoff, (went_live, kickoff)
    assert full_time is not None and full_time >= end, (full_time, end)


async def test_a_lost_automation_job_is_repaired_by_the_next_sweep(
    pool: Any, conn: Conn, factory: Factory, services: Services, endpoints: Endpoints,
    keys: Keys,
) -> None:  # fmt: skip
    kickoff = clock.now() + timedelta(seconds=3)
    match = await factory.match(start_time=kickoff)
    # a worker schedules the kickoff job on one queue ...
    lost_queue = make_queue(endpoints.redis_url, keys)
    try:
        async with workers(make_settings(services, keys.prefix), endpoints, lost_queue, n=1,
                           relay=False, cron=False):  # fmt: skip
            await lost_queue.enqueue("sweep", key="sweep-1", timeout=60)
            (sweep,) = await finished(lost_queue, ["sweep-1"])
            assert sweep.result is not None and sweep.result["scheduled"] == 1
    finally:
        await lost_queue.disconnect()
    # ... and that queue is gone (a flushed Redis, a renamed prefix): nobody runs the job
    # past kickoff: a job that nobody runs leaves no event (absence cannot be awaited)
    await asyncio.sleep((kickoff - clock.now()).total_seconds() + 0.5)
    assert (await get_match(conn, match["id"]))["status"] == "scheduled"

    fresh = Keys(services.next_prefix())
    fresh_queue = make_queue(endpoints.redis_url, fresh)
    try:
        async with workers(make_settings(services, fresh.prefix), endpoints, fresh_queue,
                           n=1, relay=False, cron=False):  # fmt: skip
            await fresh_queue.enqueue("sweep", key="sweep-2", timeout=60)
            (sweep,) = await finished(fresh_queue, ["sweep-2"])
    finally:
        await fresh_queue.disconnect()
    assert sweep.result is not None and sweep.result["automated"] > 0
    assert [(s, src) for s, src, _ in await status_log(conn, match["id"])] == [
        ("live", "automation")
    ]


def _status_is(conn: Conn, match_id: int, status: str) -> Callable[[], Any]:
    async def check() -> bool:
        return bool((await get_match(conn, match_id))["status"] == status)

    return check


async def test_an_idle_worker_stops_at_once_without_saq_grace_warnings(
    pool: Any, services: Services, endpoints: Endpoints, queue: Queue, keys: Keys,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """SAQ's upkeep loops used to count against the 10 s grace: every stop (the demo's
    Ctrl-C too) took it all and logged a warning."""
    settings = make_settings(services, keys.prefix)
    # a long grace: waiting it out cannot be mistaken for a slow stop on a loaded machine
    grace_s = 60
    worker = RunningWorker(settings, endpoints, queue, shutdown_grace_s=grace_s, cron=True)
    await worker.started()
    began = time.monotonic()
    await worker.stop()
    took = time.monotonic() - began
    assert took < grace_s / 2, f"an idle worker took {took:.1f}s to stop"
    assert not [r for r in caplog.records if "grace period" in r.getMessage()]
    assert not [r for r in caplog.records if "did not finish" in r.getMessage()]
