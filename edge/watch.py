"""What an edge worker knows of the pipeline it serves: the relay's backlog,
held matches and the workers' loops, refreshed every ``EVERY`` seconds by one
supervised loop, so ``/health`` reads memory instead of querying per probe.

* **Relay backlog**: unpublished changes of matches that are not held, and
  how long ago the oldest was committed (``store.changes.backlog``). Older
  than ``LIVESCORE_RELAY_STALL_AFTER`` means no relay is publishing: changes
  committed are not reaching anyone.
* **Held matches**: a change the relay could not publish holds its match
  (``pipeline.relay``); every other match keeps flowing.
* **Workers**: each ``livescore worker``'s heartbeat with its loops' reports,
  and the cron tick's last run (``livescore.beats``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from edge.metrics import REGISTRY
from edge.state import DB_ERRORS
from livescore import beats
from livescore.keys import Keys
from livescore.logs import kv
from livescore.supervise import Loop
from store.changes import Backlog, backlog
from store.db import Conn

log = logging.getLogger("livescore.edge.watch")

#: Seconds between two readings, and the most one reading may take.
EVERY = 1.0
READ_TIMEOUT = 2.0


@dataclass(slots=True)
class Reading:
    """The latest reading; ``None`` members: not read yet, or the read failed."""

    at: float = 0.0
    backlog: Backlog | None = None
    workers: list[beats.ProcessBeat] | None = None
    tick_at: float | None = None
    errors: dict[str, str] = field(default_factory=dict)

    def tick_stuck(self, now: float) -> bool:
        return self.workers is not None and beats.tick_stuck(self.workers, self.tick_at, now)


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
        REGISTRY.gauge_callback(
            "livescore_relay_backlog",
            "Unpublished changes of matches that are not held (as this worker last read)",
            lambda: self.reading.backlog.count if self.reading.backlog else 0,
        )
        REGISTRY.gauge_callback(
            "livescore_relay_backlog_age_seconds",
            "Seconds since the oldest unpublished change was committed (0: none)",
            lambda: (self.reading.backlog.oldest_age_s or 0.0) if self.reading.backlog else 0.0,
        )
        REGISTRY.gauge_callback(
            "livescore_relay_held_matches",
            "Matches held because one of their changes could not be published",
            lambda: len(self.reading.backlog.held) if self.reading.backlog else 0,
        )

    async def read(self) -> Reading:
        reading = Reading(at=time.time())
        try:
            async with asyncio.timeout(READ_TIMEOUT), self.db() as conn:
                reading.backlog = await backlog(conn)
        except DB_ERRORS as exc:
            reading.errors["postgres"] = repr(exc)
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                reading.workers = await beats.read_processes(self.redis, self.keys)
                reading.tick_at = await beats.last_tick(self.redis, self.keys)
        except (RedisError, OSError, TimeoutError) as exc:
            reading.errors["redis"] = repr(exc)
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
