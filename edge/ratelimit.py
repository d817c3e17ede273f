"""Rate limits shared by every edge node through Redis.

The limit (``LIVESCORE_RATE_LIMIT`` COUNT/SECONDS) is a token bucket per
client address and per API key, kept in Redis as a GCRA "theoretical
arrival time" updated by one Lua script (Redis's own clock, so nodes with
skewed clocks agree). A full bucket holds COUNT tokens and refills at
COUNT/SECONDS per second: a client may burst COUNT requests, then goes at
the sustained rate.

A Redis round trip per request would cost more than the cached read it
guards, so each worker *leases* tokens: it takes a few tokens at once and
spends them locally. Tokens are conserved (a leased token is gone from the
shared bucket), so all nodes together never allow more than the limit. The
lease size follows what is left in the bucket (an eighth of it, at most
``MAX_LEASE``), so near the limit every request goes to Redis and the
limit is exact; unspent tokens go back to the bucket when a lease expires.
A busy lease is topped up in the background when a quarter of it is left,
and concurrent requests that find no token share one round trip, so a
request practically never waits for Redis.

If Redis is unreachable the limiter fails open: requests pass, a warning
is logged (at most every 10 s), and Redis is not asked again for a second.

Local time (lease expiry, the fail-open pause, the sweep) comes from one
clock, ``clock`` (``time.monotonic`` unless a test passes a fake one); the
bucket itself runs on Redis's clock.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from livescore.config import RateLimit
from livescore.keys import Keys
from livescore.logs import kv

log = logging.getLogger("livescore.edge.ratelimit")

MAX_LEASE = 1000
LEASE_SECONDS = 1.0

# KEYS[1] bucket; ARGV: interval_ms, capacity_ms, n, mode ("take" | "give").
# Returns {granted, retry_after_ms, tokens_left}.
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if ARGV[4] == 'give' then
  tat = tat - n * interval
  if tat <= now then
    redis.call('DEL', KEYS[1])
  else
    redis.call('SET', KEYS[1], string.format('%.3f', tat), 'PX', math.ceil(tat - now))
  end
  return {0, 0, 0}
end
local available = math.floor((capacity - (tat - now)) / interval + 1e-6)
if available < 1 then
  return {0, math.ceil(tat + interval - capacity - now), 0}
end
local granted = math.min(n, available)
tat = tat + granted * interval
redis.call('SET', KEYS[1], string.format('%.3f', tat), 'PX', math.ceil(tat - now) + 1)
return {granted, 0, available - granted}
"""


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after: int = 0  # seconds, for Retry-After


ALLOW = Decision(True)


@dataclass(slots=True)
class _Lease:
    tokens: int
    expires: float
    #: Top up in the background when this many tokens are left (-1: never).
    low_water: int = -1


class RateLimiter:
    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        limit: RateLimit,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.limit = limit
        self._clock = clock
        self.interval_ms = limit.seconds * 1000 / limit.count
        self.capacity_ms = limit.seconds * 1000.0
        self._script = redis.register_script(_SCRIPT)
        self._leases: dict[str, _Lease] = {}
        self._hints: dict[str, int] = {}
        self._flights: dict[str, asyncio.Task[Decision]] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._skip_until = 0.0
        self._last_warning = 0.0
        self._next_sweep = 0.0
        #: Requests let through because Redis could not be asked (for /metrics and tests).
        self.failed_open = 0

    def bucket(self, scope: str, ident: str) -> str:
        """The Redis key of ``scope``/``ident`` ("ip"/"1.2.3.4", "key"/"17")."""
        return self.keys.rate_limit(scope, ident)

    def spend_leased(self, bucket: str) -> bool:
        """Spend a token this worker already holds: no I/O (the hot path)."""
        lease = self._leases.get(bucket)
        if lease is None or lease.tokens < 1 or lease.expires <= self._clock():
            return False
        lease.tokens -= 1
        if lease.tokens == lease.low_water and bucket not in self._flights:
            self._flights[bucket] = asyncio.ensure_future(self._take(bucket, spend=False))
        return True

    async def check(self, scope: str, ident: str) -> Decision:
        """Spend one token of ``scope``/``ident``."""
        bucket = self.bucket(scope, ident)
        if self.spend_leased(bucket):
            return ALLOW
        return await self.acquire(bucket)

    async def acquire(self, bucket: str) -> Decision:
        """Spend one token of ``bucket`` when no lease covers it.

        Concurrent requests of one bucket share one Redis round trip (each
        taking its own lease would throw the others' away)."""
        while True:
            flight = self._flights.get(bucket)
            if flight is None or flight.done():
                # lead: this request's token comes out of the new lease
                flight = asyncio.ensure_future(self._take(bucket, spend=True))
                self._flights[bucket] = flight
                return await asyncio.shield(flight)
            decision = await asyncio.shield(flight)
            if not decision.allowed:
                return decision
            if self.spend_leased(bucket):
                return ALLOW
            # the others spent that lease already: lead the next one

    async def _take(self, bucket: str, *, spend: bool) -> Decision:
        """One round trip: take a lease (one token of it for the caller if ``spend``)."""
        try:
            return await self._take_lease(bucket, spend)
        finally:
            if self._flights.get(bucket) is asyncio.current_task():
                del self._flights[bucket]

    async def _take_lease(self, bucket: str, spend: bool) -> Decision:
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        if now < self._skip_until:
            self.failed_open += spend
            return ALLOW
        want = max(1, min(MAX_LEASE, self._hints.get(bucket, 0) // 8))
        try:
            granted, retry_ms, left = await self._script(
                keys=[bucket], args=[self.interval_ms, self.capacity_ms, want, "take"]
            )
        except (RedisError, OSError) as exc:
            self._failed_open(exc, now)
            self.failed_open += spend
            return ALLOW
        granted, left = int(granted), int(left)
        self._hints[bucket] = left
        if granted < 1:
            return Decision(False, max(1, math.ceil(int(retry_ms) / 1000)))
        keep = granted - spend
        now = self._clock()
        low_water = granted // 4 if granted >= 16 else -1
        lease = self._leases.get(bucket)
        if lease is not None and lease.expires > now:
            lease.tokens += keep  # a top-up: tokens stay conserved
            lease.expires = now + LEASE_SECONDS
            lease.low_water = low_water
        elif keep > 0:
            if lease is not None and lease.tokens > 0:
                self._refund_later([(bucket, lease.tokens)])
            self._leases[bucket] = _Lease(keep, now + LEASE_SECONDS, low_water)
        return ALLOW

    def _failed_open(self, exc: BaseException, now: float) -> None:
        self._skip_until = now + 1.0
        if now - self._last_warning >= 10.0:
            self._last_warning = now
            log.warning(kv("ratelimit.fail_open", error=repr(exc), note="Redis unreachable"))

    def _sweep(self, now: float) -> None:
        """Give unspent tokens of expired leases back to their buckets."""
        self._next_sweep = now + LEASE_SECONDS
        expired = [(b, lease) for b, lease in self._leases.items() if lease.expires <= now]
        for bucket, _ in expired:
            del self._leases[bucket]
        refunds = [(b, lease.tokens) for b, lease in expired if lease.tokens > 0]
        if len(self._hints) > 100_000:
            self._hints.clear()
        if refunds:
            self._refund_later(refunds)

    def _refund_later(self, refunds: list[tuple[str, int]]) -> None:
        task = asyncio.get_running_loop().create_task(self._refund(refunds))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _refund(self, refunds: list[tuple[str, int]]) -> None:
        for bucket, tokens in refunds:
            try:
                await self._script(
                    keys=[bucket], args=[self.interval_ms, self.capacity_ms, tokens, "give"]
                )
            except (RedisError, OSError) as exc:
                log.info(kv("ratelimit.refund_failed", bucket=bucket, error=repr(exc)))
                return
