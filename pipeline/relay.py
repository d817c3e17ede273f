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

The same transaction adds one webhook delivery per published change and
endpoint that wants it (``pipeline.webhooks.create_deliveries``: rows only,
sent later by the worker's ``webhook`` jobs, so no receiver delays the relay).

Each message is the WebSocket frame itself, built by ``store.change_codec``:
``{"type", "matchId", "seq", "data", "ts"}`` (``ts``: the change's commit time),
with ``data`` the payload's stored JSON text as it is.

A change that still cannot be published (its message cannot be built, or is
over ``MAX_PUBLISH_BYTES``) costs only its match: the match is held
(``store.changes.hold``, logged with the row, reported by ``/health``) and its
later changes wait behind it, while every other match keeps flowing.
``livescore relay held`` lists held matches, ``livescore relay release`` lets
one go again.
The leader also publishes a heartbeat every ``heartbeat_s`` seconds on
``Keys.heartbeat_channel`` so edge nodes can tell a dead subscription from a
quiet one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence

import psycopg
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from livescore import clock
from livescore.errors import StoreError
from livescore.keys import Keys
from livescore.logs import kv
from livescore.waiting import wait_event
from pipeline import webhooks
from store import change_codec
from store.changes import (
    claim_unpublished,
    hold,
    listen_for_changes,
    mark_published,
    try_lead_relay,
)
from store.db import Conn, Pool, connect
from store.writes import Change

log = logging.getLogger("livescore.pipeline.relay")

#: A message larger than this is never published (Redis disconnects a Pub/Sub
#: subscriber whose output buffer passes 32 MiB); its match is held instead.
MAX_PUBLISH_BYTES = 1024 * 1024


#: How many recent commit-to-publish lags the relay keeps (``Relay.lags``, ``lag_summary``).
LAG_KEPT = 1000


def _noop() -> None:
    return None


def lag_summary(lags: Sequence[float]) -> dict[str, float | int | None]:
    """p50, p99 and max of ``lags`` (seconds) and how many there are."""
    ordered = sorted(lags)
    if not ordered:
        return {"count": 0, "p50": None, "p99": None, "max": None}

    def rank(q: float) -> float:
        return round(ordered[min(int(q * len(ordered)), len(ordered) - 1)], 4)

    return {"count": len(ordered), "p50": rank(0.5), "p99": rank(0.99), "max": rank(1.0)}


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
        beat: Callable[[], None] = _noop,
        on_deliveries: Callable[[], None] = _noop,
    ) -> None:
        self.pool = pool
        self.dsn = dsn
        self.redis = redis
        self.keys = keys
        self.batch = batch
        self.poll_interval = poll_interval
        self.heartbeat_s = heartbeat_s
        self.published = 0
        self.held = 0
        #: commit-to-publish lag of the last ``LAG_KEPT`` changes published, seconds
        self.lags: deque[float] = deque(maxlen=LAG_KEPT)
        self.is_leader = False
        #: called at least every ``heartbeat_s`` (led or not): the loop's heartbeat
        self.beat = beat
        #: called after a batch that created webhook deliveries committed
        self.on_deliveries = on_deliveries
        self.deliveries = 0
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
                ready = await self._encode_or_hold(conn, changes)
                # deliveries are only rows here: no receiver is ever waited on
                created = await webhooks.create_deliveries(conn, ready)
                pipe = self.redis.pipeline(transaction=False)
                for _, message in ready:
                    pipe.publish(self.keys.changes_channel, message)
                await pipe.execute()
                at = clock.now()
                await mark_published(conn, [change for change, _ in ready], at)
            self.lags.extend(
                max((at - change.created_at).total_seconds(), 0.0)
                for change, _ in ready
                if change.created_at is not None
            )
            total += len(ready)
            self.published += len(ready)
            if created:
                self.deliveries += created
                self.on_deliveries()
            self.beat()

    async def _encode_or_hold(
        self, conn: Conn, changes: list[Change]
    ) -> list[tuple[Change, bytes]]:
        """Each change's message; a change that has none holds its match, and the
        match's later changes in the batch wait behind it (per-match order)."""
        ready: list[tuple[Change, bytes]] = []
        stopped: set[int] = set()
        for change in changes:
            if change.match_id in stopped:
                continue
            try:
                message = change_codec.encode(change)
                if len(message) > MAX_PUBLISH_BYTES:
                    raise change_codec.UnpublishableChange(
                        f"change {change.match_id}/{change.seq} is {len(message)} bytes, "
                        f"over the {MAX_PUBLISH_BYTES}-byte publish limit"
                    )
            except change_codec.UnpublishableChange as exc:
                stopped.add(change.match_id)
                self.held += 1
                await hold(conn, change.match_id, change.seq, str(exc))
                log.error(
                    kv(
                        "relay.match_held",
                        match=change.match_id,
                        seq=change.seq,
                        type=change.type,
                        error=exc,
                        payload=(change.payload_json or b"")[:300],
                        fix=f"livescore relay release {change.match_id} --skip {change.seq}",
                    )
                )
                continue
            ready.append((change, message))
        return ready

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
            self.beat()  # failing and retrying, not stuck: /health has the error in the log
            await wait_event(stop, backoff)
            backoff = min(backoff * 2, 5.0)

    async def _lead(self, stop: asyncio.Event) -> None:
        listen = await connect(self.dsn)
        async with listen:
            if not await try_lead_relay(listen):
                # another relay leads; wait and try again
                self.beat()
                await wait_event(stop, min(2.0, self.heartbeat_s))
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
            self.beat()
            self._wake.clear()
            await wait_event(self._wake, min(self.poll_interval, self.heartbeat_s))
