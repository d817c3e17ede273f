"""A misbehaving provider costs only its own feed: a throttle pauses that feed
for every worker (no job sleeps), a feed never has two polls in flight, polls
leave job slots free, and a huge body fails its poll with a clear error.

Real SAQ workers (``pipeline.worker.build_worker``) as tasks in the test
process, real Redis and Postgres, and a provider misbehaving on a real socket
(``tests.misbehaving``).
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
from saq import Queue
from saq.job import Job, Status

from livescore import clock
from livescore.config import Settings
from livescore.feeds import FeedConfig
from livescore.keys import Keys
from livescore.runtime import Endpoints
from pipeline.budget import FeedInFlight, FeedPause
from store.changes import changes_since
from store.db import Conn
from store.feeds import add_feed
from tests.factories import Factory
from tests.misbehaving import MisbehavingProvider, delayed, huge, reply, throttle
from tests.pipeline.builders import fd_list, fd_match
from tests.pipeline.test_worker import workers
from tests.waiting import eventually

CITY, UNITED = (65, "Manchester City FC"), (66, "Manchester United FC")


@pytest.fixture
async def provider() -> AsyncIterator[MisbehavingProvider]:
    async with MisbehavingProvider() as server:
        yield server


def later_list() -> str:
    """Today's list with one match five hours away (the feed stays idle, not hot)."""
    return fd_list(fd_match(8001, CITY, UNITED, kickoff=clock.now() + timedelta(hours=5)))


async def add(conn: Conn, provider: MisbehavingProvider, name: str, **options: Any) -> None:
    """A football-data feed at ``{provider}/{name}``; 600/min: the budget never sets the pace."""
    options.setdefault("budget_per_minute", 600)
    await add_feed(conn, FeedConfig(name=name, kind="football-data",
                                    base_url=f"{provider.url}/{name}", **options))  # fmt: skip


async def run_jobs(queue: Queue, *jobs: tuple[str, dict[str, Any]]) -> list[Job]:
    """Enqueue ``(key, kwargs)`` poll jobs at once; their finished jobs, in that order."""
    for key, kwargs in jobs:
        await queue.enqueue("poll", key=key, timeout=60, retries=1, **kwargs)
    keys = [key for key, _ in jobs]
    done: list[Job] = []

    async def finished() -> bool:
        done[:] = [job for job in await queue.jobs(keys) if job is not None]
        return len(done) == len(keys) and all(j.status == Status.COMPLETE for j in done)

    await eventually(finished, 30, f"jobs {keys}")
    return done


def poll_of(feed: str, slot: int) -> tuple[str, dict[str, Any]]:
    return f"poll:{feed}:today:{slot}", {"feed": feed, "purpose": "today", "slot": slot}


# -- the pause and the in-flight lock, in Redis ------------------------------------------------


async def test_a_pause_is_shared_through_redis_and_only_ever_lengthened(
    redis: aioredis.Redis, services: Any, keys: Keys
) -> None:
    other = aioredis.from_url(services.redis_url)  # another worker's connection
    try:
        mine, theirs = FeedPause(redis, keys), FeedPause(other, keys)
        assert await theirs.remaining("fd") == 0.0
        assert await mine.pause("fd", 30, "HTTP 429") == 30.0
        assert 29 < await theirs.remaining("fd") <= 30
        assert 29 < await theirs.pause("fd", 5, "HTTP 429") <= 30  # a shorter one keeps it
        assert 59 < await theirs.pause("fd", 60, "HTTP 429") <= 60  # a longer one wins
        assert await mine.remaining("other-feed") == 0.0
    finally:
        await other.aclose()


async def test_the_in_flight_lock_has_one_owner_and_a_ttl(
    redis: aioredis.Redis, keys: Keys
) -> None:
    lock = FeedInFlight(redis, keys, ttl_s=130)
    token = await lock.acquire("fd")
    assert token is not None and await lock.held("fd")
    assert await lock.acquire("fd") is None
    await lock.release("fd", "someone-else")
    assert await lock.held("fd")
    assert 129_000 < await redis.pttl(keys.feed_in_flight("fd")) <= 130_000
    await lock.release("fd", token)
    assert not await lock.held("fd")
    assert await lock.acquire("fd") is not None


# -- throttling pauses the feed; nobody sleeps ----------------------------------------------


@pytest.mark.parametrize(
    ("answer", "pause"),
    [
        (throttle("60"), 60.0),
        (throttle(None, **{"x-requestcounter-reset": "42"}), 42.0),
        (reply(503, "{}", {"retry-after": "30"}), 30.0),
    ],
    ids=["429-retry-after", "429-x-requestcounter-reset", "503-retry-after"],
)
async def test_a_throttling_provider_pauses_its_feed_for_every_worker_and_its_polls_skip(
    pool: Any, conn: Conn, settings: Settings, endpoints: Endpoints, queue: Queue,
    keys: Keys, redis: aioredis.Redis, provider: MisbehavingProvider, answer: Any, pause: float,
) -> None:  # fmt: skip
    provider.routes["busy"] = answer
    await add(conn, provider, "busy", poll_live_s=1, poll_idle_s=1)
    async with workers(settings, endpoints, queue, relay=False, cron=False):
        (first,) = await run_jobs(queue, poll_of("busy", 1))
        # answered at once, never slept on: a job that waited the provider out would
        # have run for the whole pause (30 s or more); its own start and end say how
        # long it ran, whatever the load did to the test's waiting around it
        ran_s = (first.completed - first.started) / 1000
        assert ran_s < pause / 2, ran_s
        assert first.result is not None
        assert pause - 1 - ran_s < first.result["paused"] <= pause
        assert "rate limited by the provider" in first.result["error"]
        # the pause is the one the provider asked for, counted from when it was set
        since_s = time.time() - first.started / 1000
        assert pause - 1 - since_s < await FeedPause(redis, keys).remaining("busy") <= pause

        # later polls of the feed, on either worker, skip without a request
        later = await run_jobs(queue, poll_of("busy", 2), poll_of("busy", 3))
        assert all(j.result and "feed paused" in j.result["skipped"] for j in later)
        # and a tick does not even enqueue one
        await queue.enqueue("tick", key="tick-1", timeout=30)
        await eventually(lambda: _complete(queue, "tick-1"), 15, "tick")
        tick = await queue.job("tick-1")
        assert tick is not None and tick.result == {"enqueued": []}
    assert provider.requests["busy"] == 1


async def test_a_feed_never_has_two_polls_in_flight(
    pool: Any, conn: Conn, settings: Settings, endpoints: Endpoints, queue: Queue,
    keys: Keys, redis: aioredis.Redis, provider: MisbehavingProvider,
) -> None:  # fmt: skip
    provider.routes["slow"] = delayed(1.5, reply(200, later_list()))
    await add(conn, provider, "slow", poll_live_s=1, poll_idle_s=1)
    async with workers(settings, endpoints, queue, relay=False, cron=False):
        # two slots' polls at once (a late job and the next tick's), on two workers
        done = await run_jobs(queue, poll_of("slow", 1), poll_of("slow", 2))
    results = sorted(str(job.result) for job in done)
    assert sum("in flight" in r for r in results) == 1, results
    assert sum("observations" in r for r in results) == 1, results
    assert provider.requests["slow"] == 1
    assert provider.most_open["slow"] == 1
    # the poll that stood aside claimed nothing: the next tick may still poll its slot
    skipped = next(job for job in done if "in flight" in str(job.result))
    assert not await redis.exists(keys.lock(skipped.key))
    assert not await FeedInFlight(redis, keys, ttl_s=1).held("slow")  # released


async def test_polls_leave_job_slots_free_for_ticks_sweeps_and_automation(
    pool: Any, conn: Conn, settings: Settings, endpoints: Endpoints, queue: Queue,
    provider: MisbehavingProvider,
) -> None:  # fmt: skip
    for name in ("slow-a", "slow-b"):
        provider.routes[name] = delayed(1.5, reply(200, later_list()))
        await add(conn, provider, name, poll_live_s=1, poll_idle_s=1)
    # three slots, two reserved: one poll at a time in this worker
    async with workers(settings, endpoints, queue, n=1, relay=False, cron=False, concurrency=3):
        done = await run_jobs(queue, poll_of("slow-a", 1), poll_of("slow-b", 1))
    results = [str(job.result) for job in done]
    assert sum("already runs 1 polls" in r for r in results) == 1, results
    assert provider.requests["slow-a"] + provider.requests["slow-b"] == 1


async def test_a_huge_body_fails_its_poll_with_a_clear_error(
    pool: Any, conn: Conn, settings: Settings, endpoints: Endpoints, queue: Queue,
    provider: MisbehavingProvider,
) -> None:  # fmt: skip
    provider.routes["big"] = huge(50_000_000, declare_length=False)
    await add(conn, provider, "big", poll_live_s=1, poll_idle_s=1)
    async with workers(settings, endpoints, queue, n=1, relay=False, cron=False):
        (job,) = await run_jobs(queue, poll_of("big", 1))
    assert job.result is not None
    assert "over the 10485760-byte cap" in job.result["failed"]
    assert "--max-body" in job.result["failed"]


# -- the schedule of everything else, while one feed throttles ----------------------------------

#: SAQ moves a due scheduled job (cron ticks, automation) to the queue at most
#: once a second (its schedule lock), so such a job may start up to a second
#: after its time before any worker sees it.
SAQ_SCHEDULE_STEP_S = 1.0
#: The worker's cron tick (``pipeline.worker``: every 5 s of the wall clock).
TICK_S = 5.0
#: How late a job that kept its schedule may still start on a loaded machine.
#: Not keeping it means waiting behind polls that sleep out a Retry-After (60 s
#: here) or for the next sweep (15 s): far beyond this.
LATE_UNDER_LOAD_S = 4.0


async def test_while_one_feed_throttles_other_polls_and_status_automation_keep_their_schedule(
    pool: Any, conn: Conn, factory: Factory, settings: Settings, endpoints: Endpoints,
    queue: Queue, keys: Keys, redis: aioredis.Redis, provider: MisbehavingProvider,
) -> None:  # fmt: skip
    provider.routes["throttled"] = throttle("60")
    provider.routes["steady"] = reply(200, later_list())
    await add(conn, provider, "throttled", poll_live_s=1, poll_idle_s=1)
    await add(conn, provider, "steady", poll_live_s=1, poll_idle_s=1)
    # far enough ahead that the sweep below schedules the kickoff even on a loaded
    # machine (a sweep after it would apply it as overdue, with no automation job)
    kickoff = clock.now().replace(microsecond=0) + timedelta(seconds=12)
    match = await factory.match(start_time=kickoff, end_time=kickoff + timedelta(hours=2))

    async with workers(settings, endpoints, queue, relay=False, cron=True):
        # more throttled polls than the two workers have slots: before, each slept
        # out the Retry-After in a slot and the cron ticks stopped
        for slot in range(1, 25):
            key, kwargs = poll_of("throttled", slot)
            await queue.enqueue("poll", key=key, timeout=120, retries=3, **kwargs)
        await queue.enqueue("sweep", key="sweep-now", timeout=60)  # schedules the kickoff
        await eventually(_went_live(conn, match["id"]), 30, "the kickoff transition")
        await eventually(lambda: _steady_polls(provider) >= 3, 20, "three ticks' polls")
        auto = await queue.job(f"auto:{match['id']}:live")
        steady_jobs = [job for job in await queue.jobs(await _claimed(redis, keys, "steady"))
                       if job is not None]  # fmt: skip

    # the throttled feed: one request, then paused for everyone; nobody slept
    assert provider.requests["throttled"] == 1
    # the other feed: polled once in every 5-second tick (ticks run on the wall
    # clock's multiples of 5 s: each request falls in its own tick's period, and no
    # period is skipped), each poll started without waiting for a job slot
    times = [t for segment, t in provider.seen if segment == "steady"]
    periods = [math.floor(t / TICK_S) for t in times]
    assert periods == list(range(periods[0], periods[0] + len(periods))), times
    waits = [(job.started - job.queued) / 1000 for job in steady_jobs if job.started]
    assert waits and all(wait < LATE_UNDER_LOAD_S for wait in waits), waits
    # status automation: live at kickoff, by its own job, started when due
    assert auto is not None and auto.started
    late = auto.started / 1000 - kickoff.timestamp()
    assert 0 <= late < SAQ_SCHEDULE_STEP_S + LATE_UNDER_LOAD_S, late
    (went_live,) = [c.created_at for c in await changes_since(conn, match["id"], 0)
                    if c.type == "match:status"]  # fmt: skip
    assert went_live is not None
    went_live_late = (went_live - kickoff).total_seconds()
    assert 0 <= went_live_late < SAQ_SCHEDULE_STEP_S + LATE_UNDER_LOAD_S, went_live_late


async def _complete(queue: Queue, key: str) -> bool:
    job = await queue.job(key)
    return job is not None and job.status == Status.COMPLETE


def _steady_polls(provider: MisbehavingProvider) -> int:
    return provider.requests["steady"]


def _went_live(conn: Conn, match_id: int) -> Any:
    async def check() -> bool:
        return any(c.type == "match:status" for c in await changes_since(conn, match_id, 0))

    return check


async def _claimed(redis: aioredis.Redis, keys: Keys, feed: str) -> list[str]:
    """The keys of the poll jobs that claimed a slot of ``feed``."""
    prefix = keys.lock("")
    return [
        key.decode().removeprefix(prefix)
        async for key in redis.scan_iter(match=keys.lock(f"poll:{feed}:*"))
    ]
