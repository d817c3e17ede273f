"""What an edge worker knows of its dependencies and of the pipeline it serves,
refreshed every ``EVERY`` seconds by one supervised loop, so ``/health`` and
``/metrics`` read memory instead of querying per request (issue 18: a health
check that costs nothing per probe).

Each reading holds:

* **PostgreSQL and Redis**: did a query and a PING answer, and how fast
  (``ok``, ``latencyMs``; ``error`` when not).
* **Queue**: how many jobs wait in the SAQ queue.
* **Relay backlog**: unpublished changes of matches that are not held, and
  how long ago the oldest was committed (``store.changes.backlog``). Older
  than ``LIVESCORE_RELAY_STALL_AFTER`` means no relay is publishing: changes
  committed are not reaching anyone.
* **Held matches**: a change the relay could not publish holds its match
  (``pipeline.relay``); every other match keeps flowing.
* **Workers**: each ``livescore worker``'s heartbeat with its loops' reports,
  and the cron tick's last run (``livescore.beats``).
* **Stale live matches** and **feeds**: each enabled feed's poll record,
  budget and pause (``livescore.feed_health``), exposed as ``livescore_feed_*``.

A reading older than ``STALE_AFTER_S`` is itself a fault (``edge.health``):
the checks stopped refreshing.

A reading costs three exchanges (besides the pool's check of the connection):
PostgreSQL's statements in one pipeline (``store.health_reads``) beside Redis's
first pipeline, then Redis's second, which needs the worker ids the first one
read from their index (``livescore.beats``: no SCAN of the keyspace) and the
enabled feeds PostgreSQL named. Every worker of every node reads every second:
it was ten sequential round trips, and a SCAN of the whole keyspace.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from edge.metrics import REGISTRY
from edge.state import DB_ERRORS
from livescore import beats, feed_health
from livescore.feeds import FeedConfig
from livescore.keys import Keys
from livescore.logs import kv
from livescore.supervise import Loop
from pipeline.budget import budget_limit
from store.changes import Backlog
from store.db import Conn
from store.health_reads import read_pipeline_rows

log = logging.getLogger("livescore.edge.watch")

#: Seconds between two readings, and the most one step of a reading may take.
EVERY = 1.0
READ_TIMEOUT = 2.0
#: A reading older than this means the checks stopped refreshing (a reading
#: takes at most two steps of READ_TIMEOUT, PostgreSQL beside Redis's first round
#: trip then Redis's second, and the loop waits EVERY: one step of room).
STALE_AFTER_S = 3 * READ_TIMEOUT + EVERY


def saq_queued_key(queue_name: str) -> str:
    """The Redis list where SAQ 0.26 keeps queued job ids (``saq/queue/redis.py``)."""
    return f"saq:{queue_name}:queued"


@dataclass(slots=True)
class Reading:
    """The latest reading; ``None`` members: not read yet, or the read failed."""

    at: float = 0.0
    postgres: dict[str, Any] | None = None
    redis: dict[str, Any] | None = None
    queue_depth: int | None = None
    backlog: Backlog | None = None
    stale: int | None = None
    workers: list[beats.ProcessBeat] | None = None
    tick_at: float | None = None
    #: enabled feeds' records (None: not read)
    feeds: list[feed_health.FeedState] | None = None
    errors: dict[str, str] = field(default_factory=dict)

    def tick_stuck(self, now: float) -> bool:
        return self.workers is not None and beats.tick_stuck(self.workers, self.tick_at, now)

    def age(self, now: float) -> float:
        return now - self.at

    @property
    def workers_alive(self) -> int:
        return sum(1 for w in self.workers or [] if w.kind == "worker")


@dataclass(frozen=True, slots=True)
class _FirstRound:
    #: the index of worker processes (``livescore.beats``)
    indexed: list[bytes | str]
    #: Redis's clock, ms (the feeds' budget windows are counted on it)
    now_ms: int


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


class PipelineWatch:
    def __init__(
        self,
        db: Callable[[], AbstractAsyncContextManager[Conn]],
        redis: aioredis.Redis,
        keys: Keys,
    ) -> None:
        self.db = db
        self.redis = redis
        self.keys = keys
        self.reading = Reading()
        # every worker of a node reads the same cluster-wide values: "max", not summed
        gauge = REGISTRY.gauge_callback
        gauge(
            "livescore_relay_backlog",
            "Unpublished changes of matches that are not held (as this worker last read)",
            lambda: self.reading.backlog.count if self.reading.backlog else 0,
            merge="max",
        )
        gauge(
            "livescore_relay_backlog_age_seconds",
            "Seconds since the oldest unpublished change was committed (0: none)",
            lambda: (self.reading.backlog.oldest_age_s or 0.0) if self.reading.backlog else 0.0,
            merge="max",
        )
        gauge(
            "livescore_relay_held_matches",
            "Matches held because one of their changes could not be published",
            lambda: len(self.reading.backlog.held) if self.reading.backlog else 0,
            merge="max",
        )
        gauge(
            "livescore_workers_alive",
            "livescore worker processes whose heartbeat is current (-1: Redis unreadable)",
            lambda: self.reading.workers_alive if self.reading.workers is not None else -1,
            merge="max",
        )
        gauge(
            "livescore_matches_stale",
            "In-play matches no feed observed lately (-1: PostgreSQL unreadable)",
            lambda: self.reading.stale if self.reading.stale is not None else -1,
            merge="max",
        )
        gauge(
            "livescore_queue_depth",
            "Jobs waiting in the SAQ queue",
            lambda: self.reading.queue_depth or 0,
            merge="max",
        )
        gauge(
            "livescore_health_reading_age_seconds",
            "Seconds since this worker's health checks last refreshed (largest worker's)",
            lambda: self.reading.age(time.time()),
            merge="max",
        )
        self._feed_metrics()

    def _feed_metrics(self) -> None:
        def per_feed(read: Callable[[feed_health.FeedState], float | None]) -> Callable[[], Any]:
            def values() -> dict[tuple[str, ...], float]:
                found: dict[tuple[str, ...], float] = {}
                for state in self.reading.feeds or []:
                    value = read(state)
                    if value is not None:
                        found[(state.name,)] = value
                return found

            return values

        def errors() -> dict[tuple[str, ...], float]:
            return {
                (state.name, kind): float(count)
                for state in self.reading.feeds or []
                for kind, count in state.errors.items()
            }

        readings = REGISTRY.readings
        readings(
            "livescore_feed_polls_total",
            "Polls of each feed, every worker's (kept in Redis)",
            ("feed",),
            per_feed(lambda s: s.polls),
            kind="counter",
        )
        readings(
            "livescore_feed_errors_total",
            "Failed polls of each feed by kind (throttled, credentials, missing_secret, "
            "payload, unavailable, provider, internal)",
            ("feed", "kind"),
            errors,
            kind="counter",
        )
        readings(
            "livescore_feed_last_success_timestamp_seconds",
            "Unix time of each feed's last successful poll (absent: never)",
            ("feed",),
            per_feed(lambda s: s.last_success),
        )
        readings(
            "livescore_feed_failures_in_row",
            "Polls of each feed that failed since its last success",
            ("feed",),
            per_feed(lambda s: s.failures_in_row),
        )
        readings(
            "livescore_feed_budget_left",
            "Requests each feed may still make this minute (absent: no budget)",
            ("feed",),
            per_feed(lambda s: s.budget_left),
        )
        readings(
            "livescore_feed_paused_seconds",
            "Seconds each feed stays paused because its provider asked us to wait",
            ("feed",),
            per_feed(lambda s: s.paused_for_s),
        )

    async def _postgres(self, reading: Reading) -> list[FeedConfig] | None:
        """One round trip (``store.health_reads``); the enabled feeds, or None."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(READ_TIMEOUT), self.db() as conn:
                rows = await read_pipeline_rows(conn)
        except DB_ERRORS as exc:
            reading.errors["postgres"] = repr(exc)
            reading.postgres = {"ok": False, "error": type(exc).__name__}
            return None
        reading.stale, reading.backlog = rows.stale, rows.backlog
        reading.postgres = {"ok": True, "latencyMs": _ms(started)}
        return rows.feeds

    async def _redis(self, reading: Reading) -> _FirstRound | None:
        """The first round trip: PING (its latency is the pipeline's), the queue's
        depth, the tick's stamp, the index of worker processes, the server's clock;
        None when Redis did not answer."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                pipe = self.redis.pipeline(transaction=False)
                pipe.ping()
                pipe.llen(saq_queued_key(self.keys.queue_name))
                pipe.get(self.keys.tick_beat)
                beats.queue_index(pipe, self.keys)
                pipe.time()
                _, depth, tick, indexed, now = await pipe.execute()
        except (RedisError, OSError, TimeoutError) as exc:
            self._redis_failed(reading, exc)
            return None
        reading.redis = {"ok": True, "latencyMs": _ms(started)}
        reading.queue_depth = int(depth)
        reading.tick_at = beats.parse_tick(tick)
        return _FirstRound(indexed, feed_health.server_ms(now))

    def _redis_failed(self, reading: Reading, exc: Exception) -> None:
        reading.errors["redis"] = repr(exc)
        reading.redis = {"ok": False, "error": type(exc).__name__}

    async def _redis_second(
        self, reading: Reading, first: _FirstRound, feeds: list[FeedConfig] | None
    ) -> None:
        """The second round trip: the indexed workers' heartbeats (a SCAN first
        while the index is empty), and each enabled feed's record (when
        PostgreSQL said which feeds are enabled)."""
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                names = await beats.process_names(self.redis, self.keys, first.indexed)
                pipe = self.redis.pipeline(transaction=False)
                if names:
                    pipe.mget(names)
                if feeds is not None:
                    feed_health.queue_feeds(pipe, self.keys, [f.name for f in feeds], first.now_ms)
                replies = await pipe.execute() if names or feeds else []
        except (RedisError, OSError, TimeoutError) as exc:
            self._redis_failed(reading, exc)
            return
        reading.workers = beats.parse_processes(replies.pop(0)) if names else []
        if feeds is not None:
            reading.feeds = feed_health.parse_feeds(
                replies, [(f.name, budget_limit(f)) for f in feeds]
            )

    async def read(self) -> Reading:
        """PostgreSQL (one round trip) beside Redis's first round trip, then Redis's
        second (it needs the index's worker ids and PostgreSQL's feeds)."""
        reading = Reading()
        feeds, first = await asyncio.gather(self._postgres(reading), self._redis(reading))
        if first is not None:
            await self._redis_second(reading, first, feeds)
        reading.at = time.time()
        for name in ("postgres", "redis"):
            was, now = getattr(self.reading, name), getattr(reading, name)
            if now is not None and not now["ok"] and (was is None or was["ok"]):
                log.warning(kv(f"health.{name}_down", error=reading.errors.get(name)))
            elif was is not None and not was["ok"] and now is not None and now["ok"]:
                log.info(kv(f"health.{name}_up"))
        self.reading = reading
        return reading

    async def run(self, loop: Loop) -> None:
        """The supervised loop: read, beat, wait."""
        while True:
            reading = await self.read()
            if reading.errors:
                log.debug(kv("watch.read_failed", **reading.errors))
            loop.beat()
            await asyncio.sleep(EVERY)
