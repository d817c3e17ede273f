"""Signed webhooks: creating deliveries, sending them, and the dispatch loop.

* **Creating** (``create_deliveries``): the relay calls it in the transaction
  that publishes a batch of changes, with each change's published message. One
  delivery per change and enabled endpoint that wants it
  (``livescore.webhooks.wants``); nothing is sent there, so no receiver can
  delay the relay.
* **Dispatching** (``Dispatcher``, a supervised loop of ``livescore worker``):
  twice a second, or at once when this process's relay created deliveries, it
  enqueues one ``webhook`` SAQ job per endpoint with a delivery due (key
  ``webhook:{endpoint}``: one job per endpoint at a time), and now and then
  forgets old deliveries.
* **Sending** (``WebhookSender.run``, the ``webhook`` job): the endpoint's due
  deliveries, at most one per match (the lowest pending seq: a failing delivery
  holds the later ones of its match for its endpoint only), several matches at
  once, each POST bounded by ``LIVESCORE_WEBHOOK_TIMEOUT`` and signed per the
  Standard Webhooks spec with the secret read from the worker's environment.
  2xx: delivered. 410: the endpoint is disabled. Anything else (another status,
  a timeout, a refused connection, a redirect): retried on the schedule
  (``livescore.webhooks.RetrySchedule``), never sooner than a ``Retry-After``
  the receiver sent (capped at 10 h), then dead-lettered. A hanging
  receiver costs its own job slot until the timeout, nothing else.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import psycopg
from redis.exceptions import RedisError
from saq import Queue

from livescore import clock
from livescore.config import Settings
from livescore.errors import StoreError
from livescore.limits import MAX_WEBHOOK_RESPONSE_BYTES
from livescore.logs import kv
from livescore.supervise import Loop
from livescore.waiting import wait_event
from livescore.webhooks import (
    TEST_TYPE,
    Endpoint,
    RetrySchedule,
    WebhookSecretError,
    headers,
    message_id,
    retry_after_s,
    secret_key,
    wants,
)
from store import webhooks as store
from store.db import Conn, Pool
from store.writes import Change

log = logging.getLogger("livescore.pipeline.webhooks")

#: Matches of one endpoint sent at once by its job.
PARALLEL_PER_ENDPOINT = 8
#: A job sends for at most this long, then leaves its slot to others (the
#: dispatcher enqueues it again while deliveries are due).
JOB_BUDGET_S = 60.0
#: How often the dispatcher looks for due deliveries (it is also woken at once
#: when this process's relay created some).
DISPATCH_EVERY_S = 0.5
#: Delivered deliveries are kept this many days, dead-lettered ones this many.
KEEP_DELIVERED_DAYS = 7
KEEP_DEAD_DAYS = 30
PRUNE_EVERY_S = 600.0
#: Characters of a receiver's answer kept with a delivery.
DETAIL_CHARS = 300


def schedule_from(settings: Settings) -> RetrySchedule:
    return RetrySchedule(attempts=settings.webhook_attempts, first_gap_s=settings.webhook_backoff_s)


def job_timeout_s(settings: Settings) -> int:
    """The ``webhook`` job's SAQ timeout: its budget plus one last attempt."""
    return int(JOB_BUDGET_S + settings.webhook_timeout_s + 30)


# -- creating deliveries (inside the relay's transaction) ------------------------------


async def create_deliveries(conn: Conn, ready: list[tuple[Change, bytes]]) -> int:
    """One pending delivery per change in ``ready`` (with its published message)
    and enabled endpoint that wants it; how many were created."""
    if not ready:
        return 0
    endpoints = await store.enabled_endpoints(conn)
    if not endpoints:
        return 0
    competitions: dict[int, int | None] = {}
    if any(e.competition_ids for e in endpoints):
        competitions = await store.competitions_of(conn, sorted({c.match_id for c, _ in ready}))
    rows = [
        store.NewDelivery(
            endpoint_id=endpoint.id,
            message_id=message_id(endpoint.id, change.match_id, change.seq),
            type=change.type,
            match_id=change.match_id,
            seq=change.seq,
            body=message,
        )
        for change, message in ready
        for endpoint in endpoints
        if wants(endpoint, change.type, change.match_id, competitions.get(change.match_id))
    ]
    return await store.insert_deliveries(conn, rows)


def test_delivery(endpoint: Endpoint) -> tuple[str, bytes]:
    """A ``webhooks test`` message: its webhook-id and body."""
    body = orjson.dumps(
        {
            "type": TEST_TYPE,
            "endpoint": endpoint.name,
            "data": {"message": "a test message from `livescore webhooks test`"},
            "ts": clock.now().isoformat(),
        }
    )
    return f"msg_{endpoint.id}_test_{secrets.token_hex(8)}", body


# -- sending ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt came to."""

    status: int | None
    detail: str
    delivered: bool = False
    gone: bool = False
    #: the receiver's ``Retry-After`` in seconds (a 429 or 503 usually says it)
    retry_after_s: float | None = None


class WebhookSender:
    """Sends endpoints' due deliveries (one ``webhook`` job per endpoint at a time).

    One ``httpx.AsyncClient`` per worker process; redirects are never followed
    (the signature would travel to another host)."""

    def __init__(
        self,
        pool: Pool,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        environ: Callable[[str], str | None] | None = None,
    ) -> None:
        self.pool = pool
        self.timeout_s = settings.webhook_timeout_s
        self.schedule = schedule_from(settings)
        self._env = environ or os.environ.get
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(self.timeout_s, connect=min(5.0, self.timeout_s)),
            follow_redirects=False,
            headers={"user-agent": "livescore-webhooks/0.1"},
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )
        #: endpoints this process is sending for right now (a second job skips)
        self.sending: set[int] = set()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def run(self, endpoint_id: int) -> dict[str, Any]:
        """Send ``endpoint_id``'s due deliveries until none is due or the job's
        budget is spent; a summary for the job's result."""
        if endpoint_id in self.sending:
            return {"skipped": "this worker is already sending for this endpoint"}
        self.sending.add(endpoint_id)
        try:
            return await self._run(endpoint_id)
        finally:
            self.sending.discard(endpoint_id)

    async def _run(self, endpoint_id: int) -> dict[str, Any]:
        started = time.monotonic()
        delivered = failed = 0
        while time.monotonic() - started < JOB_BUDGET_S:
            async with self.pool.connection() as conn:
                endpoint = await store.get_endpoint_by_id(conn, endpoint_id)
                if endpoint is None or not endpoint.enabled:
                    break
                heads = await store.due_heads(conn, endpoint_id, limit=PARALLEL_PER_ENDPOINT)
            if not heads:
                break
            try:
                key = secret_key(self._env(endpoint.secret_env), endpoint.secret_env)
            except WebhookSecretError as exc:
                # every due delivery fails this attempt, saying why (webhooks deliveries)
                log.error(kv("webhook.secret_unusable", endpoint=endpoint.name, error=exc))
                outcomes = [(Outcome(None, str(exc)), 0.0) for _ in heads]
            else:
                outcomes = list(
                    await asyncio.gather(*(self._attempt(endpoint, key, head) for head in heads))
                )
            async with self.pool.connection() as conn:
                for head, (outcome, elapsed) in zip(heads, outcomes, strict=True):
                    await self._record(conn, endpoint, head, outcome, elapsed)
                    delivered += outcome.delivered
                    failed += not outcome.delivered
            if any(outcome.gone for outcome, _ in outcomes):
                break
        return {"endpoint": endpoint_id, "delivered": delivered, "failed": failed}

    async def _attempt(
        self, endpoint: Endpoint, key: bytes, delivery: store.Delivery
    ) -> tuple[Outcome, float]:
        started = time.monotonic()
        outcome = await self.post(endpoint.url, key, delivery.message_id, delivery.body or b"")
        return outcome, time.monotonic() - started

    async def post(self, url: str, key: bytes, msg_id: str, body: bytes) -> Outcome:
        """One signed POST of ``body``; never raises for anything the receiver does."""
        stamp = int(time.time())
        try:
            # not wait_for: it can swallow a cancellation (see livescore.waiting)
            async with (
                asyncio.timeout(self.timeout_s),
                self._client.stream(
                    "POST", url, content=body, headers=dict(headers(key, msg_id, stamp, body))
                ) as response,
            ):
                head = await _read_prefix(response, MAX_WEBHOOK_RESPONSE_BYTES)
        except TimeoutError:
            return Outcome(
                None, f"no answer within {self.timeout_s:g}s (LIVESCORE_WEBHOOK_TIMEOUT)"
            )
        except httpx.HTTPError as exc:
            return Outcome(None, f"{type(exc).__name__}: {exc or 'no detail'}")
        status = response.status_code
        text = head.decode(response.encoding or "utf-8", errors="replace")[:DETAIL_CHARS]
        if 200 <= status < 300:
            return Outcome(status, text, delivered=True)
        if status == 410:
            return Outcome(status, f"HTTP 410 Gone: {text}".rstrip(": "), gone=True)
        if 300 <= status < 400:
            where = response.headers.get("location", "?")
            return Outcome(
                status,
                f"HTTP {status} redirected to {where}; redirects are not followed: "
                "point the endpoint at the final URL",
            )
        wait = retry_after_s(response.headers.get("retry-after"), clock.now())
        detail = f"HTTP {status}: {text}".rstrip(": ")
        if wait is not None:
            detail += f" (Retry-After {wait:g}s)"
        return Outcome(status, detail, retry_after_s=wait)

    async def _record(
        self,
        conn: Conn,
        endpoint: Endpoint,
        delivery: store.Delivery,
        outcome: Outcome,
        elapsed_s: float,
    ) -> None:
        where = {"endpoint": endpoint.name, "delivery": delivery.id, "id": delivery.message_id}
        if outcome.delivered:
            assert outcome.status is not None
            await store.record_delivered(conn, delivery.id, outcome.status, outcome.detail)
            log.info(kv("webhook.delivered", **where, status=outcome.status))
            return
        if outcome.gone:
            reason = (
                f"the receiver answered 410 Gone at {clock.now().isoformat(timespec='seconds')}"
            )
            await store.record_gone(conn, delivery.id, endpoint.id, reason)
            log.warning(
                kv("webhook.gone", **where, fix=f"livescore webhooks enable {endpoint.name}")
            )
            return
        # when the attempt began, not ended: a slow answer never skips a retry point;
        # a receiver's Retry-After counts from when its answer came
        not_before = None
        if outcome.retry_after_s is not None:
            not_before = delivery.age_s + elapsed_s + outcome.retry_after_s
        retry_at = self.schedule.next_after(delivery.age_s, delivery.attempts + 1, not_before)
        if delivery.type == TEST_TYPE:
            retry_at = None  # a test message is tried once: its sender is waiting for the answer
        await store.record_failed(conn, delivery.id, outcome.status, outcome.detail, retry_at)
        if retry_at is None:
            log.error(
                kv(
                    "webhook.dead_lettered",
                    **where,
                    attempts=delivery.attempts + 1,
                    error=outcome.detail,
                    fix=f"livescore webhooks redeliver {delivery.id}",
                )
            )
        else:
            log.warning(
                kv(
                    "webhook.failed",
                    **where,
                    attempt=delivery.attempts + 1,
                    error=outcome.detail,
                    retry_in_s=round(max(retry_at - delivery.age_s - elapsed_s, 0.0), 1),
                )
            )


async def _read_prefix(response: httpx.Response, limit: int) -> bytes:
    """At most about ``limit`` bytes of the answer; the rest is left unread."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)


# -- dispatching ------------------------------------------------------------------------


class Dispatcher:
    """Enqueues a ``webhook`` job per endpoint with a delivery due; forgets old ones."""

    def __init__(self, pool: Pool, queue: Queue, settings: Settings) -> None:
        self.pool = pool
        self.queue = queue
        self.settings = settings
        self._wake = asyncio.Event()
        self._pruned_at = 0.0
        self.enqueued = 0

    def wake(self) -> None:
        """Look now (the relay just created deliveries)."""
        self._wake.set()

    async def once(self) -> list[int]:
        """Enqueue a job for every endpoint with a delivery due; the endpoints."""
        async with self.pool.connection() as conn:
            due = await store.endpoints_due(conn)
            if time.monotonic() - self._pruned_at > PRUNE_EVERY_S:
                self._pruned_at = time.monotonic()
                gone = await store.prune(
                    conn, delivered_days=KEEP_DELIVERED_DAYS, dead_days=KEEP_DEAD_DAYS
                )
                if gone:
                    log.info(kv("webhook.pruned", deliveries=gone))
        for endpoint_id in due:
            job = await self.queue.enqueue(
                "webhook",
                key=f"webhook:{endpoint_id}",
                endpoint_id=endpoint_id,
                timeout=job_timeout_s(self.settings),
                retries=1,
                ttl=600,
            )
            self.enqueued += job is not None
        return due

    async def run(self, stop: asyncio.Event, loop: Loop) -> None:
        while not stop.is_set():
            self._wake.clear()
            try:
                await self.once()
            except (psycopg.Error, StoreError, OSError) as exc:
                log.warning(kv("webhook.dispatch_postgres_error", error=exc))
            except RedisError as exc:
                log.warning(kv("webhook.dispatch_redis_error", error=exc))
            loop.beat()
            await wait_event(self._wake, DISPATCH_EVERY_S)
