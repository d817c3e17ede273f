"""Whole databases: creating and dropping one on a server, and naming it in a DSN.

Used by ``livescore demo`` (its own throwaway database), the benchmarks
(scratch databases) and the test harness (one database per run). Sync
psycopg: these run once, before any event loop has work to do.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

import psycopg
from psycopg import sql

from livescore.errors import StoreError
from store.db import Conn, redact


def as_url(dsn: str) -> str:
    """A libpq DSN (URL or ``key=value``) as a ``postgresql://`` URL."""
    if dsn.startswith(("postgresql://", "postgres://")):
        return dsn
    info = {k: str(v) for k, v in psycopg.conninfo.conninfo_to_dict(dsn).items() if v is not None}
    user = quote(info.pop("user", "postgres"), safe="")
    password = info.pop("password", None)
    dbname = quote(info.pop("dbname", "postgres"), safe="")
    host, port = info.pop("host", ""), info.pop("port", None)
    netloc = (f"{user}:{quote(password, safe='')}" if password else user) + "@"
    if host.startswith("/"):
        info["host"] = host  # a unix socket directory goes in the query
        if port:
            info["port"] = port
    elif host:
        netloc += host + (f":{port}" if port else "")
    query = urlencode(info)
    return f"postgresql://{netloc}/{dbname}" + (f"?{query}" if query else "")


def with_database(dsn: str, dbname: str) -> str:
    """The URL of database ``dbname`` on the server ``dsn`` names."""
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    info["dbname"] = dbname
    return as_url(psycopg.conninfo.make_conninfo("", **info))


def create_database(admin_dsn: str, name: str, *, replace: bool = False) -> str:
    """Create database ``name`` (dropping it first when ``replace``); its URL."""
    try:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            if replace:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        raise StoreError(
            f"could not create database {name!r} on {redact(admin_dsn)}: {exc}; "
            "check that the DATABASE_URL role may create databases"
        ) from exc
    return with_database(admin_dsn, name)


def drop_database(admin_dsn: str, name: str) -> None:
    """Drop database ``name`` (connections to it are terminated)."""
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


async def database_exists(conn: Conn, name: str) -> bool:
    """Whether the server ``conn`` is connected to has a database called ``name``."""
    cur = await conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
    return await cur.fetchone() is not None
