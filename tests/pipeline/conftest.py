"""Fixtures for the pipeline's integration tests (real Postgres, Redis, SAQ).

    settings      a ``Settings`` bound to this run's database and this test's Redis prefix
    endpoints     the matching ``Endpoints`` (nothing embedded is started from here)
    queue         the SAQ queue on this test's prefix
    pctx          a ``PipelineContext`` opened on them (after ``pool`` emptied the tables)
    fresh_db      a factory of extra, freshly migrated databases (dropped after the test)
    http_server   a scripted local HTTP server (for subprocess CLI tests)
    private_redis a redis-server of this test's own, which a test may kill and restart

Builders of observations and provider payloads are in ``tests.pipeline.builders``.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from saq import Queue

from livescore.config import Settings, load_settings
from livescore.keys import Keys
from livescore.runtime import Endpoints
from pipeline.context import PipelineContext
from pipeline.worker import make_queue
from store.admin import create_database, drop_database
from store.db import Pool, connect
from store.migrate import migrate
from tests.conftest import Services

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"


def cli_env(services: Services, prefix: str, **extra: str) -> dict[str, str]:
    """``services.env()`` for a CLI subprocess, with a URL DATABASE_URL and our prefix."""
    return services.env(DATABASE_URL=services.database_url, LIVESCORE_REDIS_PREFIX=prefix, **extra)


class Cli:
    """``livescore <leading...> ...`` as a subprocess (``python -m cli``) bound to a
    test's database and Redis prefix, with ``env`` on top of ``cli_env``."""

    def __init__(self, services: Services, keys: Keys, *leading: str, **env: str) -> None:
        self.env = cli_env(services, keys.prefix, **env)
        self.leading = leading

    async def __call__(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "cli", *self.leading, *args],
            capture_output=True,
            text=True,
            env={**self.env, **env},
            cwd=ROOT,
            timeout=90,
        )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    """The command's stdout; it must have exited 0."""
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result.stdout


def settings_env(services: Services, prefix: str, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": services.database_url,
        "REDIS_URL": services.redis_url,
        "LIVESCORE_REDIS_PREFIX": prefix,
        "LIVESCORE_DATA_DIR": str(services.data_dir),
        "LIVESCORE_LOG_LEVEL": "WARNING",
        **extra,
    }


def make_settings(services: Services, prefix: str, **extra: str) -> Settings:
    return load_settings(settings_env(services, prefix, **extra))


def endpoints_for(database_url: str, redis_url: str) -> Endpoints:
    return Endpoints(database_url, redis_url, embedded_postgres=False, embedded_redis=False)


@pytest.fixture
def settings(services: Services, keys: Keys) -> Settings:
    return make_settings(services, keys.prefix)


@pytest.fixture
def endpoints(services: Services) -> Endpoints:
    return endpoints_for(services.database_url, services.redis_url)


@pytest.fixture
async def queue(endpoints: Endpoints, keys: Keys) -> AsyncIterator[Queue]:
    """The SAQ queue on this test's prefix."""
    queue = make_queue(endpoints.redis_url, keys)
    try:
        yield queue
    finally:
        await queue.disconnect()


@pytest.fixture
async def pctx(
    pool: Pool, settings: Settings, endpoints: Endpoints
) -> AsyncIterator[PipelineContext]:
    # ``pool`` is requested first: it empties the tables before the context opens
    ctx = await PipelineContext.open(settings, endpoints, pool_size=5)
    try:
        yield ctx
    finally:
        await ctx.close()


# -- extra fresh databases -------------------------------------------------------------------


FreshDb = Callable[[], Awaitable[str]]


@pytest.fixture
async def fresh_db(services: Services) -> AsyncIterator[FreshDb]:
    """``await fresh_db()`` -> the URL of a new, migrated, empty database."""
    created: list[str] = []

    async def make() -> str:
        name = f"livescore_fresh_{os.getpid()}_{secrets.token_hex(4)}"
        url = create_database(services.database_url, name)
        created.append(name)
        conn = await connect(url)
        async with conn:
            await migrate(conn)
        return url

    try:
        yield make
    finally:
        for name in created:
            drop_database(services.database_url, name)


# -- a scripted local HTTP server ------------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class SeenRequest:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


class ScriptedServer:
    """Answers GETs from a script: ``script`` replies are used first, in order;
    after that ``route(path, query)`` (or ``default``) answers."""

    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.default = Reply(404, '{"message": "nothing scripted"}')
        self.route: Callable[[str, dict[str, str]], Reply | None] | None = None
        self.requests: list[SeenRequest] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = dict(parse_qsl(parts.query))
                with server._lock:
                    server.requests.append(
                        SeenRequest(
                            parts.path, query, {k.lower(): v for k, v in self.headers.items()}
                        )
                    )
                    reply = server.script.pop(0) if server.script else None
                if reply is None and server.route is not None:
                    reply = server.route(parts.path, query)
                reply = reply or server.default
                data = reply.body.encode()
                self.send_response(reply.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)


@pytest.fixture
def http_server() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
