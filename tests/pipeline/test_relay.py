"""The outbox relay: committed change-log rows -> Redis Pub/Sub, in seq order per
match, loss-free across Redis restarts and relay restarts, one leader at a time.

A ``Collector`` subscribes like an edge node does (one PubSub, ``get_message`` in
a loop that survives connection errors and resubscribes), and the tests compare
what it heard with the change log in Postgres.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from livescore import supervise
from livescore.keys import Keys
from livescore.model import EventType, MatchPatch, MatchState, NewEvent
from livescore.runtime import redis_client
from livescore.supervise import Loop, Loops
from pipeline.relay import Relay
from store.change_codec import encode
from store.changes import changes_since
from store.db import Conn, Pool
from store.writes import apply_change
from tests.conftest import Services
from tests.factories import Factory
from tests.pipeline.builders import match_ids
from tests.servers import PrivateRedis
from tests.waiting import bounded, eventually


class Collector:
    """One subscriber on the changes channel that keeps listening through Redis restarts."""

    def __init__(self, url: str, keys: Keys) -> None:
        self.client: aioredis.Redis = aioredis.from_url(url)
        self.channel = keys.changes_channel
        self.frames: list[bytes] = []
        self.errors = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        pubsub = self.client.pubsub()
        await pubsub.subscribe(self.channel)
        self._task = asyncio.create_task(self._listen(pubsub))

    async def _listen(self, pubsub: Any) -> None:
        try:
            while not self._stop.is_set():
                try:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
                except (RedisError, OSError):
                    self.errors += 1
                    await asyncio.sleep(0.02)
                    continue
                if message is not None:
                    self.frames.append(message["data"])
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
        await self.client.aclose()

    def heard(self) -> dict[int, list[tuple[int, bytes]]]:
        """Per match: (seq, frame) in the order they arrived."""
        out: dict[int, list[tuple[int, bytes]]] = defaultdict(list)
        for frame in self.frames:
            message = orjson.loads(frame)
            out[message["matchId"]].append((message["seq"], frame))
        return out


class RelayTask:
    """A relay running as a task, as a worker runs it."""

    def __init__(self, pool: Pool, dsn: str, redis: aioredis.Redis, keys: Keys) -> None:
        self.relay = Relay(pool, dsn, redis, keys, poll_interval=0.2, heartbeat_s=0.5)
        self.stop_event = asyncio.Event()
        self.task = asyncio.create_task(self.relay.run(self.stop_event))

    async def stop(self) -> None:
        self.stop_event.set()
        await bounded(asyncio.shield(self.task), 15, "the relay to stop")

    async def kill(self) -> None:
        """Die abruptly, wherever it is (a crashed worker)."""
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await bounded(asyncio.shield(self.task), 15, "the cancelled relay to finish")


class Writer:
    """Writes changes through the single write path, round robin over matches:
    a goal's commentary every third write, else the score."""

    def __init__(self, conn: Conn, matches: list[int]) -> None:
        self.conn = conn
        self.matches = matches
        self.count = itertools.count()
        self.written = 0

    async def write(self, n: int, pause: float = 0.0) -> None:
        for _ in range(n):
            await self.write_one()
            if pause:
                await asyncio.sleep(pause)

    async def write_until(self, stop: asyncio.Event, pause: float) -> None:
        """A stream of writes that goes on until ``stop`` is set."""
        while not stop.is_set():
            await self.write_one()
            await asyncio.sleep(pause)

    async def write_one(self) -> None:
        step = next(self.count)
        match_id = self.matches[step % len(self.matches)]

        def patch(state: MatchState, step: int = step) -> MatchPatch:
            if step % 3 == 2:
                return MatchPatch(
                    source="test",
                    new_events=(
                        NewEvent(EventType.TEXT, minute=1 + step % 90, message=f"step {step}"),
                    ),
                )
            return MatchPatch(
                source="test", home_score=state.home_score + 1, away_score=state.away_score
            )

        self.written += len(await apply_change(self.conn, match_id, patch))


async def committed(conn: Conn) -> dict[int, list[bytes]]:
    """Per match: the frame of every committed change, in seq order."""
    return {
        match_id: [encode(c) for c in await changes_since(conn, match_id, 0, limit=100_000)]
        for match_id in await match_ids(conn)
    }


async def unpublished(conn: Conn) -> int:
    cur = await conn.execute("SELECT count(*) AS n FROM match_changes WHERE published_at IS NULL")
    row = await cur.fetchone()
    return int(row["n"]) if row else -1


def heard_everything(collector: Collector, expected: dict[int, list[bytes]]) -> bool:
    heard = collector.heard()
    return all(
        {seq for seq, _ in heard.get(match_id, [])} >= set(range(1, len(frames) + 1))
        for match_id, frames in expected.items()
    )


def assert_complete_and_ordered(
    collector: Collector, expected: dict[int, list[bytes]], *, duplicates: bool
) -> None:
    """Every committed change was heard, the first time in seq order; any repeat is
    a re-publication of the very same frame (and none at all unless ``duplicates``)."""
    heard = collector.heard()
    assert heard.keys() == expected.keys()
    for match_id, frames in expected.items():
        first_seen: list[int] = []
        for seq, frame in heard[match_id]:
            assert frame == frames[seq - 1], (match_id, seq)  # same bytes as the log says
            if seq not in first_seen:
                first_seen.append(seq)
        assert first_seen == list(range(1, len(frames) + 1)), (match_id, first_seen)
        if not duplicates:
            assert len(heard[match_id]) == len(frames), match_id


async def matches(factory: Factory, n: int) -> list[int]:
    return [(await factory.match())["id"] for _ in range(n)]


# -- the tests -------------------------------------------------------------------------------


async def test_committed_changes_are_published_in_seq_order_per_match(
    pool: Pool, conn: Conn, factory: Factory, services: Services, keys: Keys
) -> None:
    ids = await matches(factory, 3)
    collector = Collector(services.redis_url, keys)
    await collector.start()
    redis = redis_client(services.redis_url)
    relay = RelayTask(pool, services.database_url, redis, keys)
    try:
        writer = Writer(conn, ids)
        await writer.write(30, pause=0.01)
        # a change that is never committed is never published
        async with pool.connection() as other:
            with contextlib.suppress(RuntimeError):
                async with other.transaction():
                    await apply_change(
                        other, ids[0], MatchPatch(source="test", home_score=99, away_score=99)
                    )
                    await asyncio.sleep(0.6)  # three relay polls
                    raise RuntimeError("roll back")
        await writer.write(6)
        expected = await committed(conn)
        await eventually(lambda: heard_everything(collector, expected), what="every change")
        await asyncio.sleep(0.5)  # anything extra would arrive now: absence cannot be awaited
    finally:
        await relay.stop()
        await collector.stop()
        await redis.aclose()
    assert_complete_and_ordered(collector, expected, duplicates=False)
    assert all(b'"homeScore":99' not in frame for frame in collector.frames)
    assert await unpublished(conn) == 0
    assert relay.relay.published == sum(len(frames) for frames in expected.values())


async def test_a_redis_restart_mid_stream_loses_no_change(
    pool: Pool, conn: Conn, factory: Factory, services: Services, keys: Keys,
    private_redis: PrivateRedis,
) -> None:  # fmt: skip
    ids = await matches(factory, 3)
    collector = Collector(private_redis.url, keys)
    await collector.start()
    redis = redis_client(private_redis.url)
    relay = RelayTask(pool, services.database_url, redis, keys)
    writer = Writer(conn, ids)
    try:
        await eventually(lambda: relay.relay.is_leader, what="the relay to lead")
        # the stream flows; Redis is killed while the writer keeps writing
        stop_writing = asyncio.Event()
        streaming = asyncio.create_task(writer.write_until(stop_writing, pause=0.02))
        await eventually(lambda: relay.relay.published > 0, what="the stream to flow")
        private_redis.kill(signal.SIGKILL)  # mid-stream, wherever the relay is
        stop_writing.set()
        await bounded(streaming, 30, "the writer")
        await writer.write(15, pause=0.02)  # all of these while Redis is down
        # relay polls that find Redis down: a publish that does not happen cannot be awaited
        await asyncio.sleep(1.0)
        assert await unpublished(conn) >= 15  # kept in the change log, not lost

        # Bring Redis back. Pub/Sub only reaches those subscribed when a message is
        # published, so hold the backlog (row locks; the relay claims with SKIP
        # LOCKED) until our subscriber is back, as an edge node would be.
        async with pool.connection() as holder, holder.transaction():
            await holder.execute(
                "SELECT 1 FROM match_changes WHERE published_at IS NULL FOR UPDATE"
            )
            private_redis.start()
            probe = private_redis.client()
            try:
                await eventually(
                    lambda: subscribers(probe, keys.changes_channel) >= 1,
                    what="the subscriber to resubscribe",
                )
            finally:
                probe.close()
        await writer.write(15, pause=0.02)  # and more after it returned
        expected = await committed(conn)
        await eventually(lambda: heard_everything(collector, expected), 30, "every change")
        await eventually(no_unpublished(conn), 15, "every row marked published")
    finally:
        await relay.stop()
        await collector.stop()
        await redis.aclose()
    assert collector.errors > 0  # it really lost its connection
    assert_complete_and_ordered(collector, expected, duplicates=True)
    assert sum(len(frames) for frames in expected.values()) == writer.written


async def test_a_relay_restarted_after_a_crash_neither_skips_nor_loses_rows(
    pool: Pool, conn: Conn, factory: Factory, services: Services, keys: Keys
) -> None:
    ids = await matches(factory, 2)
    collector = Collector(services.redis_url, keys)
    await collector.start()
    redis = redis_client(services.redis_url)
    first = RelayTask(pool, services.database_url, redis, keys)
    second = None
    writer = Writer(conn, ids)
    try:
        await eventually(lambda: first.relay.is_leader, what="the first relay to lead")
        stop_writing = asyncio.Event()
        streaming = asyncio.create_task(writer.write_until(stop_writing, pause=0.01))
        # once it has published some of the stream, not after a fixed time (under
        # load it might not have published anything yet)
        await eventually(lambda: first.relay.published > 0, what="the first relay to publish")
        await first.kill()  # mid-stream, wherever it was
        stop_writing.set()
        await bounded(streaming, 30, "the writer")
        await writer.write(10)  # no relay at all now
        assert await unpublished(conn) > 0
        second = RelayTask(pool, services.database_url, redis, keys)
        expected = await committed(conn)
        await eventually(lambda: heard_everything(collector, expected), what="every change")
        await eventually(no_unpublished(conn), what="every row marked published")
    finally:
        if second is not None:
            await second.stop()
        await collector.stop()
        await redis.aclose()
    assert first.relay.published > 0 and second.relay.published > 0
    assert_complete_and_ordered(collector, expected, duplicates=True)


async def test_only_one_of_two_running_relays_leads_and_the_other_takes_over(
    pool: Pool, conn: Conn, factory: Factory, services: Services, keys: Keys
) -> None:
    ids = await matches(factory, 2)
    collector = Collector(services.redis_url, keys)
    await collector.start()
    redis = redis_client(services.redis_url)
    relays = [RelayTask(pool, services.database_url, redis, keys) for _ in range(2)]
    writer = Writer(conn, ids)
    try:
        await eventually(lambda: any(r.relay.is_leader for r in relays), what="a leader")
        await writer.write(20, pause=0.01)
        await eventually(no_unpublished(conn), what="every row published")
        for _ in range(10):  # and it stays that way
            assert sum(r.relay.is_leader for r in relays) == 1
            await asyncio.sleep(0.1)
        leader, follower = sorted(relays, key=lambda r: not r.relay.is_leader)
        assert (leader.relay.published, follower.relay.published) == (writer.written, 0)

        await leader.stop()  # the leader goes away: the other one takes over
        await eventually(lambda: follower.relay.is_leader, 10, "the follower to lead")
        await writer.write(10)
        expected = await committed(conn)
        await eventually(lambda: heard_everything(collector, expected), what="every change")
    finally:
        for relay in relays:
            await relay.stop()
        await collector.stop()
        await redis.aclose()
    assert follower.relay.published == 10
    assert_complete_and_ordered(collector, expected, duplicates=False)


def subscribers(client: Any, channel: str) -> int:
    ((_, count),) = client.pubsub_numsub(channel)
    return int(count)


def no_unpublished(conn: Conn) -> Callable[[], Any]:
    async def check() -> bool:
        return await unpublished(conn) == 0

    return check


async def test_a_relay_that_cannot_reach_postgres_keeps_retrying(
    pool: Pool, conn: Conn, factory: Factory, services: Services, keys: Keys
) -> None:
    """PostgreSQL refusing the LISTEN connection (``connect`` raises StoreError) is
    a dead dependency like any other: the relay backs off and tries again, it
    does not die and leave the worker without one."""
    ids = await matches(factory, 1)
    collector = Collector(services.redis_url, keys)
    await collector.start()
    redis = redis_client(services.redis_url)
    relay = RelayTask(pool, "postgresql://nobody@127.0.0.1:1/none", redis, keys)
    try:
        await asyncio.sleep(1.0)  # several failed connects: the relay not dying has no event
        assert not relay.task.done(), relay.task.exception()
        relay.relay.dsn = services.database_url  # PostgreSQL is back
        await eventually(lambda: relay.relay.is_leader, 10, "the relay to lead")
        await Writer(conn, ids).write(3)
        expected = await committed(conn)
        await eventually(lambda: heard_everything(collector, expected), what="every change")
    finally:
        await relay.stop()
        await collector.stop()
        await redis.aclose()


async def test_a_relay_poisoned_by_a_bug_is_restarted_by_its_supervisor_and_loses_nothing(
    pool: Pool,
    conn: Conn,
    factory: Factory,
    services: Services,
    keys: Keys,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An unexpected exception (not a dead dependency) escapes ``Relay.run``: the
    worker's supervisor logs it, starts the relay again, and every change goes out."""
    monkeypatch.setattr(supervise, "BACKOFF_FIRST", 0.05)
    ids = await matches(factory, 2)
    collector = Collector(services.redis_url, keys)
    await collector.start()
    redis = redis_client(services.redis_url)
    relay = Relay(pool, services.database_url, redis, keys, poll_interval=0.2, heartbeat_s=0.5)
    real_drain = relay.drain
    poisoned = [True]

    async def drain() -> int:
        if poisoned:
            poisoned.clear()
            raise RuntimeError("a bug in drain")
        return await real_drain()

    relay.drain = drain  # type: ignore[method-assign]
    stop = asyncio.Event()
    loops = Loops()

    async def run(loop: Loop) -> None:
        relay.beat = loop.beat
        await relay.run(stop)

    loops.supervise("relay", run, interval=1.0)
    try:
        await Writer(conn, ids).write(6)
        expected = await committed(conn)
        await eventually(lambda: heard_everything(collector, expected), what="every change")
        (report,) = loops.reports()
        assert report.restarts == 1 and report.last_error == "RuntimeError: a bug in drain"
        assert report.ok
    finally:
        stop.set()
        await bounded(loops.stop(), 15, "the relay to stop")
        await collector.stop()
        await redis.aclose()
