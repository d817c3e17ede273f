"""Connections: the async pool every process opens once, and short-lived
admin connections for the CLI and tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from livescore.errors import StoreError

Conn = psycopg.AsyncConnection[DictRow]
#: A cursor of ``Conn`` (pipeline mode: sent now, read after the sync).
Cursor = psycopg.AsyncCursor[DictRow]
Pool = AsyncConnectionPool[Conn]

#: The NOTIFY channel the write path signals on commit; the relay LISTENs.
CHANGES_CHANNEL = "livescore_changes"


#: Seconds a first connection may take before a command gives up (libpq's minimum is 2).
CONNECT_TIMEOUT_S = 2


async def open_pool(
    dsn: str, *, min_size: int = 1, max_size: int = 10, name: str = "livescore"
) -> Pool:
    """Open a pool of dict-row connections, checked before each use so a
    PostgreSQL restart is invisible to callers (STACK-NOTES).

    One plain connection is tried first: a server that is not there fails at
    once with its own reason (``StoreError``, one line), instead of the pool
    retrying in the background for 15 s and logging a warning per retry."""
    probe = await connect(dsn, connect_timeout=CONNECT_TIMEOUT_S)
    await probe.close()
    pool: Pool = AsyncConnectionPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        open=False,
        name=name,
        kwargs={"row_factory": dict_row, "autocommit": True},
        check=AsyncConnectionPool.check_connection,
        connection_class=psycopg.AsyncConnection[DictRow],
    )
    try:
        await pool.open(wait=True, timeout=15)
    except Exception as exc:
        await pool.close()
        raise StoreError(
            f"cannot connect to PostgreSQL at {redact(dsn)}: {one_line(exc)}; "
            "check DATABASE_URL (or unset it for the embedded server)"
        ) from exc
    return pool


async def connect(dsn: str, **kwargs: Any) -> Conn:
    """One autocommit dict-row connection (CLI commands, LISTEN)."""
    try:
        conn: Conn = await psycopg.AsyncConnection.connect(
            dsn, autocommit=True, row_factory=dict_row, **kwargs
        )
    except psycopg.OperationalError as exc:
        raise StoreError(
            f"cannot connect to PostgreSQL at {redact(dsn)}: {one_line(exc)}; check DATABASE_URL"
        ) from exc
    return conn


def one_line(exc: BaseException) -> str:
    """libpq's messages span lines ("...refused\n\tIs the server running..."): one line."""
    return " ".join(str(exc).split())


def redact(dsn: str) -> str:
    """A DSN with its password hidden, for messages and logs."""
    if "://" not in dsn or "@" not in dsn:
        return dsn
    scheme, rest = dsn.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else dsn


@contextlib.asynccontextmanager
async def atomic(conn: Conn) -> AsyncIterator[None]:
    """A transaction, or the caller's when one is already open.

    Unlike nested ``conn.transaction()`` blocks this adds no SAVEPOINT round
    trips: an error anywhere rolls the whole outer transaction back, which is
    what every caller here wants (none recovers from an inner failure).
    """
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        yield
        return
    async with conn.transaction():
        yield
