"""Real edge processes for the edge tests (REST here, WebSocket later).

``edge_server`` is a factory: ``edge_server.start(n=2, **env)`` runs ``n``
``livescore serve`` processes bound to this test run's database and Redis
prefix (``services.env``), waits until each answers ``/health``, and
returns them; every node is killed when the test ends, and its stderr is
printed then (pytest shows it when the test failed)::

    async def test_two_nodes(edge_server: EdgeServers) -> None:
        a, b = edge_server.start(2, LIVESCORE_RATE_LIMIT="5/60")
        async with httpx.AsyncClient() as http:
            await http.get(f"{a.url}/api/matches")

Nodes of one ``start`` call share one Redis prefix (their own, unless
``prefix=`` is given), so they share rate-limit buckets and the changes
channel with each other and with nothing else; ``node.keys`` names them.
``edge_module`` is the same factory scoped to a module, for read-mostly
tests that can share nodes.

The edge tests' ``pool`` does not empty the tables: nodes may outlive one
test (``edge_module``) and must never see ids reused under their caches.
Each test makes its own competitions and teams and filters by them.
"""

from __future__ import annotations

import itertools
import os
import secrets
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import pytest
import redis.asyncio as aioredis

from livescore.keys import Keys
from store.apikeys import create_key
from store.change_codec import encode
from store.db import Conn, Pool, open_pool
from store.writes import Change
from tests.conftest import Services
from tests.servers import free_port
from tests.waiting import eventually_blocking

ROOT = Path(__file__).resolve().parents[2]
LIVESCORE = str(Path(sys.executable).with_name("livescore"))
#: Generous enough that only the rate-limit tests ever see a 429.
RELAXED_RATE_LIMIT = "1000000/60"
#: Tries to start a node whose port was taken before it could bind it.
PORT_ATTEMPTS = 3


@dataclass
class EdgeNode:
    node_id: str
    port: int
    prefix: str
    process: subprocess.Popen[bytes]
    log_path: Path
    _log: IO[bytes] = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def keys(self) -> Keys:
        return Keys(self.prefix)

    def log_text(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)  # the node and its workers
                self.process.wait(timeout=5)
        self._log.close()


class EdgeServers:
    """Starts ``livescore serve`` processes; ``stop_all`` ends them."""

    def __init__(self, services: Services, workdir: Path) -> None:
        self.services = services
        self.workdir = workdir
        self.nodes: list[EdgeNode] = []

    def start(
        self,
        n: int = 1,
        *,
        prefix: str | None = None,
        workers: int = 1,
        wait_healthy: bool = True,
        **env: str,
    ) -> list[EdgeNode]:
        """Start ``n`` nodes sharing one Redis prefix; wait for each to answer /health."""
        prefix = prefix or self.services.next_prefix()
        started = [self._spawn(prefix, workers, env) for _ in range(n)]
        for i, node in enumerate(started):
            for attempt in itertools.count(1):
                try:
                    self._wait(node, healthy=wait_healthy)
                    break
                except RuntimeError:
                    # free_port's port is free when picked, not when the node binds it:
                    # on a busy machine another process's connection may take it first
                    if attempt == PORT_ATTEMPTS or "Address already in use" not in node.log_text():
                        raise
                    self.nodes.remove(node)
                    node.stop()
                    node = started[i] = self._spawn(prefix, workers, env)
        return started

    def _spawn(self, prefix: str, workers: int, env: dict[str, str]) -> EdgeNode:
        node_id = f"edge-{secrets.token_hex(3)}"
        port = free_port()
        log_path = self.workdir / f"{node_id}.log"
        log = log_path.open("wb")
        environment = self.services.env(
            **{
                "DATABASE_URL": self.services.database_url,
                "LIVESCORE_REDIS_PREFIX": prefix,
                "LIVESCORE_NODE_ID": node_id,
                "LIVESCORE_RATE_LIMIT": RELAXED_RATE_LIMIT,
                **env,
            }
        )
        command = [LIVESCORE, "serve", "--host", "127.0.0.1", "--port", str(port)]
        command += ["--workers", str(workers)]
        # its own session: Sanic's worker manager SIGKILLs its whole process group
        # when a worker fails, which must never be pytest's group
        process = subprocess.Popen(
            command,
            env=environment,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        node = EdgeNode(node_id, port, prefix, process, log_path, log)
        self.nodes.append(node)
        return node

    def _wait(self, node: EdgeNode, *, healthy: bool, timeout: float = 30.0) -> None:
        def ready() -> bool:
            if node.process.poll() is not None:
                raise RuntimeError(f"{node.node_id} exited early:\n{node.log_text()}")
            try:
                response = httpx.get(f"{node.url}/health", timeout=2.0)
            except httpx.TransportError as exc:
                raise AssertionError(repr(exc)) from None
            assert response.status_code == 200 or not healthy, (
                f"{response.status_code} {response.text}"
            )
            return True

        try:
            eventually_blocking(ready, timeout, f"{node.node_id} to answer /health")
        except AssertionError as exc:
            raise RuntimeError(f"{exc}\n{node.log_text()}") from None

    def stop_all(self) -> None:
        for node in self.nodes:
            node.stop()
        for node in self.nodes:
            text = node.log_text() if node.log_path.exists() else ""
            print(f"---- {node.node_id} (port {node.port}) log ----\n{text[-20_000:]}")
        self.nodes.clear()


@pytest.fixture
def edge_server(services: Services, tmp_path: Path) -> Iterator[EdgeServers]:
    servers = EdgeServers(services, tmp_path)
    try:
        yield servers
    finally:
        servers.stop_all()


@pytest.fixture(scope="module")
def edge_module(services: Services) -> Iterator[EdgeServers]:
    workdir = Path(tempfile.mkdtemp(prefix="livescore-edge-"))
    servers = EdgeServers(services, workdir)
    try:
        yield servers
    finally:
        servers.stop_all()


@pytest.fixture(scope="module")
def edge(edge_module: EdgeServers) -> EdgeNode:
    """One node shared by the tests of a module."""
    return edge_module.start(1)[0]


# -- database and Redis helpers ----------------------------------------------------------


@pytest.fixture
async def pool(services: Services) -> AsyncIterator[Pool]:
    """Overrides the root ``pool``: no TRUNCATE (edge nodes outlive tests; ids never reused)."""
    pool = await open_pool(services.database_url, min_size=1, max_size=20, name="edge-tests")
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def api_key(conn: Conn) -> str:
    """A fresh, valid API key (plain text)."""
    return (await create_key(conn, f"test-{secrets.token_hex(4)}")).plain


async def publish(redis: aioredis.Redis, keys: Keys, changes: list[Change]) -> None:
    """Publish changes as the relay does (``store.change_codec``)."""
    for change in changes:
        await redis.publish(keys.changes_channel, encode(change))


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
