"""Per-feed request budgets and body hashes shared by every worker, in Redis.

``RedisBudget`` implements ``providers.http.RequestBudget``: a sliding
one-minute window per feed kept in a sorted set at ``{prefix}:budget:{feed}``
(one member per request taken, scored by Redis server time in milliseconds).
Taking a slot is one Lua script, so concurrent workers never overspend: it
drops members older than the window, counts the rest and either adds one
(returns 0) or returns the milliseconds until the oldest leaves the window.
Server time (``TIME``) is used so workers with skewed clocks agree.

``FeedPause``: a provider that says "wait" (429, ``Retry-After``,
``X-RequestCounter-Reset``: ``providers.errors.Throttled``) pauses its feed for
every worker: one key ``{prefix}:pause:{feed}`` with that TTL. A pause is only
ever lengthened, never shortened, by a later throttle. Ticks enqueue no poll
of a paused feed and a poll already queued skips; no worker ever sleeps on it.

``FeedInFlight``: the lock a poll holds on its feed (``SET NX PX``, released by
its owner only, with a TTL for a worker that dies), so a feed never has two
polls in flight, whatever the workers, purposes and slots.

``RedisBodyHashCache`` implements ``providers.http.BodyHashCache`` with one
string key per feed and request (``{prefix}:bodyhash:{feed}:{request}``),
expiring after a day so stale requests do not accumulate.
"""

from __future__ import annotations

import secrets
from typing import Any

import redis.asyncio as aioredis

from livescore.feeds import FeedConfig
from livescore.keys import Keys
from providers.kinds import ADAPTERS

# KEYS[1] budget key; ARGV: window ms, limit, unique member suffix. Writing after
# TIME needs effects replication: the default since Redis 5, asked for explicitly
# for older servers (a no-op on Redis 7).
_ACQUIRE = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  redis.call('ZADD', KEYS[1], now, now .. ':' .. ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if oldest[2] == nil then
  return window
end
local wait = tonumber(oldest[2]) + window - now
if wait < 1 then
  wait = 1
end
return wait
"""

# KEYS[1] budget key; ARGV: window ms, limit. Read-only: slots left now.
_REMAINING = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local used = redis.call('ZCOUNT', KEYS[1], '(' .. (now - tonumber(ARGV[1])), '+inf')
local left = tonumber(ARGV[2]) - used
if left < 0 then
  left = 0
end
return left
"""


# KEYS[1] pause key; ARGV: pause ms, value. Lengthen only: a shorter pause never
# cuts a longer one another worker set.
_PAUSE = """
local left = redis.call('PTTL', KEYS[1])
if left >= tonumber(ARGV[1]) then
  return left
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[1])
return tonumber(ARGV[1])
"""

# KEYS[1] lock key; ARGV[1] owner token. Delete only if we still own it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class FeedPause:
    """Per-feed pauses shared by every worker (see the module docstring)."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._pause: Any = redis.register_script(_PAUSE)

    async def pause(self, feed: str, seconds: float, reason: str) -> float:
        """Pause ``feed`` for ``seconds`` (or keep a longer pause); the seconds it now lasts."""
        ms = max(int(seconds * 1000), 1)
        left = await self._pause(keys=[self._keys.feed_pause(feed)], args=[ms, reason])
        return int(left) / 1000.0

    async def remaining(self, feed: str) -> float:
        """Seconds ``feed`` stays paused (0.0: not paused)."""
        left = int(await self._redis.pttl(self._keys.feed_pause(feed)))
        return left / 1000.0 if left > 0 else 0.0


class FeedInFlight:
    """The one-poll-per-feed lock (see the module docstring)."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, *, ttl_s: float) -> None:
        self._redis = redis
        self._keys = keys
        self._ttl_ms = max(int(ttl_s * 1000), 1)
        self._release: Any = redis.register_script(_RELEASE)

    async def acquire(self, feed: str) -> str | None:
        """A token when the lock was taken; None when another poll holds it."""
        token = secrets.token_hex(8)
        taken = await self._redis.set(
            self._keys.feed_in_flight(feed), token, nx=True, px=self._ttl_ms
        )
        return token if taken else None

    async def held(self, feed: str) -> bool:
        return bool(await self._redis.exists(self._keys.feed_in_flight(feed)))

    async def release(self, feed: str, token: str) -> None:
        await self._release(keys=[self._keys.feed_in_flight(feed)], args=[token])


class RedisBudget:
    """``RequestBudget`` shared by every process using the same Redis and prefix."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, *, window_s: float = 60.0) -> None:
        self._redis = redis
        self._keys = keys
        self._window_ms = max(int(window_s * 1000), 1)
        self._acquire: Any = redis.register_script(_ACQUIRE)
        self._remaining: Any = redis.register_script(_REMAINING)

    async def acquire(self, feed: str, per_minute: int) -> float:
        """0.0 when a request slot was taken, else seconds until one frees up."""
        waited = await self._acquire(
            keys=[self._keys.budget(feed)],
            args=[self._window_ms, per_minute, secrets.token_hex(6)],
        )
        return int(waited) / 1000.0

    async def remaining(self, feed: str, per_minute: int) -> int:
        left = await self._remaining(
            keys=[self._keys.budget(feed)], args=[self._window_ms, per_minute]
        )
        return int(left)


class RedisBodyHashCache:
    """``BodyHashCache`` shared by every worker, so a body parsed by one is skipped by all."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, *, ttl_s: int = 86400) -> None:
        self._redis = redis
        self._keys = keys
        self._ttl_s = ttl_s

    async def get(self, feed: str, request: str) -> str | None:
        value = await self._redis.get(self._keys.body_hash(feed, request))
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    async def set(self, feed: str, request: str, body_hash: str) -> None:
        await self._redis.set(self._keys.body_hash(feed, request), body_hash, ex=self._ttl_s)

    async def delete(self, feed: str, request: str) -> None:
        await self._redis.delete(self._keys.body_hash(feed, request))


def budget_limit(feed: FeedConfig) -> int | None:
    """Requests per minute ``feed`` may make: its own budget, else its provider's
    free-tier default (``providers.http.FeedClient.budget_per_minute``), else none."""
    if feed.budget_per_minute is not None:
        return feed.budget_per_minute
    adapter = ADAPTERS.get(feed.kind)
    return adapter.default_budget_per_minute if adapter is not None else None
