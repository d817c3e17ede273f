"""Fixtures for the WebSocket tests: real edge processes, the real relay.

edges         ``edges(n, **env)`` starts ``n`` real ``livescore serve`` nodes on this
              test's Redis prefix (``tests.edge.conftest.EdgeServers``)
module_edge   one node for a whole module (protocol tables, fuzz), on ``module_keys``
make_relay    ``await make_relay(redis, keys)``: the outbox relay running in the test's loop
relay         the relay on this test's prefix
pool          no TRUNCATE: nodes may outlive a test and must never see an id reused
raw_upgrade   ``await raw_upgrade(port, behind=b"")``: a bare socket past the 101 (the
              lean connection and admission tests, which write their own frames)
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from livescore.keys import Keys
from pipeline.relay import Relay
from store.db import Pool, open_pool
from tests.conftest import Services
from tests.edge.conftest import EdgeNode, EdgeServers
from tests.waiting import eventually

EdgeFactory = Callable[..., list[EdgeNode]]


@pytest.fixture
async def pool(services: Services) -> AsyncIterator[Pool]:
    pool = await open_pool(services.database_url, min_size=1, max_size=20, name="ws-tests")
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def edges(services: Services, keys: Keys, tmp_path: Path) -> Iterator[EdgeFactory]:
    servers = EdgeServers(services, tmp_path)

    def start(n: int = 1, **env: str) -> list[EdgeNode]:
        return servers.start(n, prefix=keys.prefix, **env)

    try:
        yield start
    finally:
        servers.stop_all()


@pytest.fixture(scope="module")
def module_keys(services: Services) -> Keys:
    return Keys(services.next_prefix())


@pytest.fixture(scope="module")
def module_edge(
    services: Services, module_keys: Keys, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EdgeNode]:
    servers = EdgeServers(services, tmp_path_factory.mktemp("edge"))
    try:
        yield servers.start(1, prefix=module_keys.prefix)[0]
    finally:
        servers.stop_all()


class RelayRunner:
    """``await make_relay(redis, keys)`` starts the outbox relay in the test's
    loop; ``await make_relay.stop_all()`` stops every relay it started (before
    their Redis clients close: a relay still running would open a connection
    on a closed client and leak it)."""

    def __init__(self, pool: Pool, database_url: str) -> None:
        self.pool = pool
        self.database_url = database_url
        self.running: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

    async def __call__(self, redis: aioredis.Redis, keys: Keys) -> Relay:
        relay = Relay(self.pool, self.database_url, redis, keys, poll_interval=0.1)
        stop = asyncio.Event()
        self.running.append((stop, asyncio.create_task(relay.run(stop))))
        await eventually(lambda: relay.is_leader, 15, "the relay to lead")
        return relay

    async def stop_all(self) -> None:
        running, self.running = self.running, []
        for stop, task in running:
            stop.set()
            await task


@pytest.fixture
async def make_relay(pool: Pool, services: Services) -> AsyncIterator[RelayRunner]:
    runner = RelayRunner(pool, services.database_url)
    try:
        yield runner
    finally:
        await runner.stop_all()


@pytest.fixture
async def relay(redis: aioredis.Redis, keys: Keys, make_relay: RelayFactory) -> Relay:
    # ``redis`` first: fixtures are torn down in reverse, so the relay stops before it closes
    return await make_relay(redis, keys)


@pytest.fixture
async def module_relay(redis: aioredis.Redis, module_keys: Keys, make_relay: RelayFactory) -> Relay:
    return await make_relay(redis, module_keys)


RelayFactory = RelayRunner


async def raw_upgrade(
    port: int, *, behind: bytes = b""
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A bare socket to the node's ``/ws``, past the ``101``. ``behind`` (frames the
    client sends before it has seen the answer) goes in the same write as the upgrade
    request; what follows the 101's head, the welcome frame first, is left unread."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        + behind
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer
