"""Where Postgres and Redis are: the configured URLs, or the embedded servers.

With ``DATABASE_URL`` and ``REDIS_URL`` both set nothing embedded starts;
with either unset, that one comes from ``livescore.embedded``.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from livescore import embedded
from livescore.config import Settings


@dataclass(frozen=True, slots=True)
class Endpoints:
    database_url: str
    redis_url: str
    embedded_postgres: bool
    embedded_redis: bool


def resolve(settings: Settings) -> Endpoints:
    """The URLs to use, starting the embedded servers that are needed."""
    need_pg = settings.database_url is None
    need_redis = settings.redis_url is None
    started = None
    if need_pg or need_redis:
        started = embedded.ensure_running(settings.data_dir, postgres=need_pg, redis=need_redis)
    return Endpoints(
        database_url=settings.database_url or (started.database_url if started else ""),
        redis_url=settings.redis_url or (started.redis_url if started else ""),
        embedded_postgres=need_pg,
        embedded_redis=need_redis,
    )


def redis_client(url: str, **kwargs: object) -> aioredis.Redis:
    """A redis.asyncio client with keepalive (STACK-NOTES: half-open TCP)."""
    client: aioredis.Redis = aioredis.from_url(
        url,
        socket_keepalive=True,
        socket_connect_timeout=5,
        health_check_interval=15,
        **kwargs,
    )
    return client
