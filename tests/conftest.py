"""The shared test harness.

Each test run gets its own PostgreSQL database (created, migrated, dropped)
and its own Redis key prefix (Pub/Sub channels are global across Redis dbs,
so the prefix is what isolates runs). Servers come from ``DATABASE_URL`` /
``REDIS_URL`` when set, else from the embedded default started in a private
temporary data dir for this run (and stopped at the end).

Fixtures:
    services       session: URLs, prefix and env for subprocesses
    pool           a psycopg AsyncConnectionPool on the run's database (tables emptied first)
    conn           one connection from ``pool``
    redis          a redis.asyncio client; ``keys`` a Keys with this test's own prefix
    factory        row factories: teams, competitions, matches, events
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis as syncredis
import redis.asyncio as aioredis

from livescore import embedded
from livescore.keys import Keys
from store.admin import create_database, drop_database
from store.db import Conn, Pool, open_pool
from tests.factories import Factory
from tests.servers import PrivateRedis

APP_TABLES = (
    "override_audit, overrides, observations, match_crosswalk, team_crosswalk, "
    "competition_crosswalk, events, match_changes, matches, teams, competitions, feeds, api_keys, "
    "webhook_deliveries, webhook_endpoints"
)


@dataclass
class Services:
    database_url: str
    redis_url: str
    prefix: str
    data_dir: Path
    embedded: bool
    counter: int = 0
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self, **overrides: str) -> dict[str, str]:
        """Environment for a subprocess (CLI, worker, edge) bound to this run."""
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
        env.update(
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            LIVESCORE_REDIS_PREFIX=self.prefix,
            LIVESCORE_DATA_DIR=str(self.data_dir),
            LIVESCORE_LOG_LEVEL="INFO",
            # the run's tests share one database and most write changes with no relay
            # running: /health's relay-stall check is off unless a test turns it on
            LIVESCORE_RELAY_STALL_AFTER="86400",
        )
        env.update(self.extra_env)
        env.update(overrides)
        return env

    def next_prefix(self) -> str:
        self.counter += 1
        return f"{self.prefix}.{self.counter}"


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    run_id = f"{os.getpid()}_{secrets.token_hex(3)}"
    tmp = Path(tempfile.mkdtemp(prefix="livescore-test-"))
    database_url = os.environ.get("DATABASE_URL") or None
    redis_url = os.environ.get("REDIS_URL") or None
    started_embedded = database_url is None or redis_url is None
    if started_embedded:
        endpoints = embedded.ensure_running(
            tmp / "data", postgres=database_url is None, redis=redis_url is None
        )
        database_url = database_url or endpoints.database_url
        redis_url = redis_url or endpoints.redis_url
    assert database_url and redis_url

    dbname = f"livescore_test_{run_id}"
    test_url = create_database(database_url, dbname)
    _migrate_sync(test_url)
    prefix = f"lstest-{run_id}"
    services = Services(test_url, redis_url, prefix, tmp / "data", started_embedded)
    try:
        yield services
    finally:
        drop_database(database_url, dbname)
        client = syncredis.Redis.from_url(redis_url)
        for key in client.scan_iter(match=f"*{prefix}*", count=1000):
            client.delete(key)
        client.close()
        if started_embedded:
            embedded.stop(tmp / "data")
        shutil.rmtree(tmp, ignore_errors=True)


def _migrate_sync(url: str) -> None:
    import asyncio

    from store.db import connect
    from store.migrate import migrate

    async def go() -> None:
        conn = await connect(url)
        async with conn:
            await migrate(conn)

    asyncio.run(go())


@pytest.fixture
async def pool(services: Services) -> AsyncIterator[Pool]:
    pool = await open_pool(services.database_url, min_size=1, max_size=20, name="tests")
    async with pool.connection() as conn:
        await conn.execute(f"TRUNCATE {APP_TABLES} RESTART IDENTITY CASCADE")
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def conn(pool: Pool) -> AsyncIterator[Conn]:
    async with pool.connection() as conn:
        yield conn


@pytest.fixture
def keys(services: Services) -> Keys:
    """A Keys with a prefix of this test's own (channels and queues never collide)."""
    return Keys(services.next_prefix())


@pytest.fixture
async def redis(services: Services) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(services.redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def factory(conn: Conn) -> Factory:
    return Factory(conn)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A redis-server of this test's own, to kill and restart mid-stream."""
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        if server.proc is not None:
            server.kill(signal.SIGTERM)
