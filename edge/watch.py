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
from store.changes import Backlog, backlog
from store.coverage import stale_count
from store.db import Conn
from store.feeds import list_feeds

log = logging.getLogger("livescore.edge.watch")

#: Seconds between two readings, and the most one step of a reading may take.
EVERY = 1.0
READ_TIMEOUT = 2.0
#: A reading older than this means the checks stopped refreshing (a reading
#: takes at most three steps of READ_TIMEOUT, then the loop waits EVERY).
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
        started = time.perf_counter()
        try:
            async with asyncio.timeout(READ_TIMEOUT), self.db() as conn:
                reading.stale = await stale_count(conn)
                reading.backlog = await backlog(conn)
                feeds = await list_feeds(conn, enabled_only=True)
        except DB_ERRORS as exc:
            reading.errors["postgres"] = repr(exc)
            reading.postgres = {"ok": False, "error": type(exc).__name__}
            return None
        reading.postgres = {"ok": True, "latencyMs": _ms(started)}
        return feeds

    async def _redis(self, reading: Reading) -> bool:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                await self.redis.ping()  # type: ignore[misc]  # redis-py's sync/async union
                latency = _ms(started)
                depth = await self.redis.llen(saq_queued_key(self.keys.queue_name))  # type: ignore[misc]
                reading.queue_depth = int(depth)
                reading.workers = await beats.read_processes(self.redis, self.keys)
                reading.tick_at = await beats.last_tick(self.redis, self.keys)
        except (RedisError, OSError, TimeoutError) as exc:
            reading.errors["redis"] = repr(exc)
            reading.redis = {"ok": False, "error": type(exc).__name__}
            return False
        reading.redis = {"ok": True, "latencyMs": latency}
        return True

    async def read(self) -> Reading:
        reading = Reading()
        feeds, redis_ok = await asyncio.gather(self._postgres(reading), self._redis(reading))
        if feeds is not None and redis_ok:
            try:
                async with asyncio.timeout(READ_TIMEOUT):
                    reading.feeds = await feed_health.read_feeds(
                        self.redis, self.keys, [(f.name, budget_limit(f)) for f in feeds]
                    )
            except (RedisError, OSError, TimeoutError) as exc:
                reading.errors["redis"] = repr(exc)
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
