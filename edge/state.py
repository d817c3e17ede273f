"""What one edge worker holds while it serves: its pool, Redis client, bus,
caches and rate limiter (opened in ``edge.app``'s listeners)."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import psycopg
import redis.asyncio as aioredis
from sanic import Request, Sanic

from edge.bus import ChangeBus
from edge.cache import Caches
from edge.ratelimit import RateLimiter
from livescore.config import Settings
from livescore.errors import StoreError
from livescore.keys import Keys
from livescore.runtime import Endpoints
from livescore.supervise import Loops
from store.db import Conn, Pool

if TYPE_CHECKING:
    from edge.watch import PipelineWatch

#: What a database outage looks like from the edge (a pool timeout is a psycopg
#: OperationalError; StoreError is a refused connection): a 503, an ``unavailable``
#: frame, a retry.
DB_ERRORS = (psycopg.Error, StoreError, OSError, TimeoutError)

#: Seconds a request waits for a database connection before it is a 503.
DB_ACQUIRE_TIMEOUT = 2.0

EdgeApp = Sanic[Any, Any]


@dataclass
class EdgeState:
    settings: Settings
    endpoints: Endpoints
    keys: Keys
    pool: Pool
    redis: aioredis.Redis
    bus: ChangeBus
    caches: Caches
    limiter: RateLimiter
    #: this worker's supervised loops (bus, watch, keepalive, metrics sharing)
    loops: Loops = field(default_factory=Loops)
    watch: PipelineWatch | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    def db(self) -> AbstractAsyncContextManager[Conn]:
        """A pooled connection; waits at most ``DB_ACQUIRE_TIMEOUT`` (PoolTimeout -> 503)."""
        return self.pool.connection(timeout=DB_ACQUIRE_TIMEOUT)


def state(request: Request) -> EdgeState:
    return cast(EdgeState, request.app.ctx.edge)
