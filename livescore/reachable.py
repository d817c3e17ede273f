"""Waiting for Redis at startup, one log line per try.

A worker started before Redis is up (or while it restarts) waits here instead
of letting SAQ's upkeep loops print a traceback each per second: every failed
try logs one ``redis.unreachable`` line (where, which try, the reason, when
the next try comes) and the waits grow from 1 s to at most 15 s.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

from redis.exceptions import RedisError

from livescore.logs import kv
from livescore.runtime import redis_client

log = logging.getLogger("livescore.reachable")

Sleep = Callable[[float], Awaitable[None]]


def redact_redis(url: str) -> str:
    """A Redis URL without its password, for log lines."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


async def wait_for_redis(
    url: str,
    *,
    first_wait_s: float = 1.0,
    max_wait_s: float = 15.0,
    sleep: Sleep = asyncio.sleep,
) -> int:
    """Return once ``PING`` answers; the number of tries it took."""
    client = redis_client(url, socket_timeout=5)
    wait = first_wait_s
    attempt = 0
    try:
        while True:
            attempt += 1
            try:
                await client.ping()  # type: ignore[misc]  # redis-py's sync/async union
            except (RedisError, OSError) as exc:
                reason = " ".join(str(exc).split()) or type(exc).__name__
                log.warning(
                    kv(
                        "redis.unreachable",
                        url=redact_redis(url),
                        attempt=attempt,
                        error=reason,
                        retry_in_s=wait,
                    )
                )
                await sleep(wait)
                wait = min(wait * 2, max_wait_s)
                continue
            if attempt > 1:
                log.info(kv("redis.reachable", url=redact_redis(url), attempts=attempt))
            return attempt
    finally:
        await client.aclose()
