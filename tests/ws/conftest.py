"""Fixtures for the WebSocket tests: real edge processes, the real relay.

edges         start ``livescore serve`` processes on this test's Redis prefix
module_edge   one edge for a whole module (protocol tables, fuzz)
relay         the outbox relay (``pipeline.relay.Relay``) running in the test's loop
make_relay    start a relay against another Redis (the Redis-restart test)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from urllib.parse import quote, urlencode

import psycopg
import pytest
import redis.asyncio as aioredis

from livescore.keys import Keys
from pipeline.relay import Relay
from store.db import Pool
from tests.conftest import Services
from tests.ws.helpers import Edge, wait_until

EdgeFactory = Callable[..., Edge]


def database_url(dsn: str) -> str:
    """The run's DSN as a URL (config only takes URLs; the harness may hold key=value)."""
    if dsn.startswith(("postgresql://", "postgres://")):
        return dsn
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    user = quote(str(info.pop("user", "postgres")), safe="")
    password = info.pop("password", None)
    host = str(info.pop("host", ""))
    port = info.pop("port", None)
    dbname = quote(str(info.pop("dbname", "postgres")), safe="")
    auth = f"{user}:{quote(str(password), safe='')}" if password else user
    if host.startswith("/"):
        info["host"] = host
        host = ""
    netloc = f"{auth}@{host}" + (f":{port}" if port and host else "")
    if port and not host:
        info["port"] = port
    query = urlencode({k: str(v) for k, v in info.items()})
    return f"postgresql://{netloc}/{dbname}" + (f"?{query}" if query else "")


def edge_env(services: Services, prefix: str, **extra: str) -> dict[str, str]:
    return services.env(
        DATABASE_URL=database_url(services.database_url),
        LIVESCORE_REDIS_PREFIX=prefix,
        # every test client connects from 127.0.0.1: keep the REST limit out of the way
        LIVESCORE_RATE_LIMIT="100000/60",
        LIVESCORE_LOG_LEVEL="INFO",
        **extra,
    )


@pytest.fixture
def edges(services: Services, keys: Keys, tmp_path: Path) -> Iterator[EdgeFactory]:
    started: list[Edge] = []

    def start(**env: str) -> Edge:
        edge = Edge(edge_env(services, keys.prefix, **env), tmp_path)
        started.append(edge)
        return edge.start()

    try:
        yield start
    finally:
        for edge in started:
            edge.stop()


@pytest.fixture(scope="module")
def module_keys(services: Services) -> Keys:
    return Keys(services.next_prefix())


@pytest.fixture(scope="module")
def module_edge(
    services: Services, module_keys: Keys, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Edge]:
    edge = Edge(edge_env(services, module_keys.prefix), tmp_path_factory.mktemp("edge"))
    edge.start()
    try:
        yield edge
    finally:
        edge.stop()


@pytest.fixture
async def make_relay(pool: Pool, services: Services) -> AsyncIterator[Callable[..., object]]:
    running: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

    async def start(redis: aioredis.Redis, keys: Keys) -> Relay:
        relay = Relay(pool, services.database_url, redis, keys, poll_interval=0.1)
        stop = asyncio.Event()
        running.append((stop, asyncio.create_task(relay.run(stop))))
        await wait_until(lambda: relay.is_leader, 15, "the relay to lead")
        return relay

    try:
        yield start
    finally:
        for stop, task in running:
            stop.set()
            await task


@pytest.fixture
async def relay(make_relay: Callable[..., object], redis: aioredis.Redis, keys: Keys) -> Relay:
    started = await make_relay(redis, keys)  # type: ignore[misc]
    assert isinstance(started, Relay)
    return started


@pytest.fixture
async def module_relay(
    make_relay: Callable[..., object], redis: aioredis.Redis, module_keys: Keys
) -> Relay:
    started = await make_relay(redis, module_keys)  # type: ignore[misc]
    assert isinstance(started, Relay)
    return started
