"""The outbox relay: committed change-log rows -> Redis Pub/Sub, loss-free.

The write path appends change-log rows in the same transaction as the match
change and ``NOTIFY``s on commit. The relay wakes on that notification (or
every ``poll_interval`` regardless), claims unpublished rows, publishes them
in seq order per match to ``Keys.changes_channel``, and marks them published
in the same database transaction. So:

* Redis down: the publish fails, the transaction rolls back, the rows stay
  unpublished and are published when Redis returns (retried with backoff).
* A relay that dies between publishing and marking re-publishes those rows
  on restart: subscribers see a duplicate seq, which the edge drops (clients
  dedupe by seq), never a gap.
* Only one relay publishes at a time (a session advisory lock elects it), so
  per-match order holds with several workers running.

Each message is the WebSocket frame itself: orjson bytes of
``{"type", "matchId", "seq", "data", "ts"}`` (``ts``: the change's commit time).
The leader also publishes a heartbeat every ``heartbeat_s`` seconds on
``Keys.heartbeat_channel`` so edge nodes can tell a dead subscription from a
quiet one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import orjson
import psycopg
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from livescore import clock
from livescore.errors import StoreError
from livescore.keys import Keys
from livescore.logs import kv
from livescore.waiting import wait_event
from store.changes import (
    claim_unpublished,
    listen_for_changes,
    mark_published,
    try_lead_relay,
)
from store.db import Pool, connect
from store.writes import Change

log = logging.getLogger("livescore.pipeline.relay")


def encode(change: Change) -> bytes:
    """The published message (and WebSocket frame) of a change."""
    message = change.message()
    message["ts"] = change.created_at.isoformat() if change.created_at else None
    return orjson.dumps(message)


class Relay:
    def __init__(
        self,
        pool: Pool,
        dsn: str,
        redis: aioredis.Redis,
        keys: Keys,
        *,
        batch: int = 500,
        poll_interval: float = 1.0,
        heartbeat_s: float = 1.0,
    ) -> None:
        self.pool = pool
        self.dsn = dsn
        self.redis = redis
        self.keys = keys
        self.batch = batch
        self.poll_interval = poll_interval
        self.heartbeat_s = heartbeat_s
        self.published = 0
        self.is_leader = False
        self._wake = asyncio.Event()

    async def drain(self) -> int:
        """Publish every unpublished change now; returns how many were published."""
        total = 0
        while True:
            async with self.pool.connection() as conn, conn.transaction():
                changes = await claim_unpublished(conn, limit=self.batch)
                if not changes:
                    return total
                changes.sort(key=lambda c: (c.match_id, c.seq))
                pipe = self.redis.pipeline(transaction=False)
                for change in changes:
                    pipe.publish(self.keys.changes_channel, encode(change))
                await pipe.execute()
                await mark_published(conn, changes, clock.now())
            total += len(changes)
            self.published += len(changes)

    async def run(self, stop: asyncio.Event) -> None:
        """Elect, listen, publish until ``stop`` is set. Never raises on a dead
        dependency: it logs, backs off and tries again."""
        backoff = 0.2
        while not stop.is_set():
            try:
                await self._lead(stop)
                backoff = 0.2
            except (psycopg.Error, OSError, StoreError) as exc:
                # StoreError: ``connect`` converts a refused LISTEN connection
                log.warning(kv("relay.postgres_error", error=exc, retry_s=backoff))
            except RedisError as exc:
                log.warning(kv("relay.redis_error", error=exc, retry_s=backoff))
            self.is_leader = False
            await wait_event(stop, backoff)
            backoff = min(backoff * 2, 5.0)

    async def _lead(self, stop: asyncio.Event) -> None:
        listen = await connect(self.dsn)
        async with listen:
            if not await try_lead_relay(listen):
                # another relay leads; wait and try again
                await wait_event(stop, 2.0)
                return
            self.is_leader = True
            log.info(kv("relay.leading"))
            await listen_for_changes(listen)
            notifier = asyncio.create_task(self._notifications(listen))
            try:
                await self._publish_loop(stop, notifier)
            finally:
                notifier.cancel()
                with contextlib.suppress(asyncio.CancelledError, psycopg.Error):
                    await notifier

    async def _notifications(self, conn: psycopg.AsyncConnection[object]) -> None:
        async for _ in conn.notifies():
            self._wake.set()

    async def _publish_loop(self, stop: asyncio.Event, notifier: asyncio.Task[None]) -> None:
        last_beat = 0.0
        while not stop.is_set():
            if notifier.done():
                notifier.result()  # re-raise the LISTEN connection's failure
                return
            await self.drain()
            now = time.monotonic()
            if now - last_beat >= self.heartbeat_s:
                await self.redis.publish(self.keys.heartbeat_channel, b"1")
                last_beat = now
            self._wake.clear()
            await wait_event(self._wake, min(self.poll_interval, self.heartbeat_s))
