"""Operator-configured feeds. Secrets are never stored: a feed names the
environment variable that holds its secret."""

from __future__ import annotations

from typing import Any

import psycopg

from livescore.errors import ConfigError, Conflict, InvalidChange, NotFound
from livescore.feeds import FeedConfig, check_base_url
from store.db import Conn, Cursor

_COLUMNS = (
    "name, kind, base_url, secret_env, priority, competitions, poll_live_s, poll_idle_s, "
    "budget_per_minute, enabled, max_body_bytes"
)


def _config(row: dict[str, Any]) -> FeedConfig:
    return FeedConfig(
        name=row["name"],
        kind=row["kind"],
        base_url=row["base_url"],
        secret_env=row["secret_env"],
        priority=row["priority"],
        competitions=tuple(row["competitions"]),
        poll_live_s=float(row["poll_live_s"]),
        poll_idle_s=float(row["poll_idle_s"]),
        budget_per_minute=row["budget_per_minute"],
        enabled=row["enabled"],
        max_body_bytes=row["max_body_bytes"],
    )


async def add_feed(conn: Conn, feed: FeedConfig) -> FeedConfig:
    try:
        check_base_url(feed.kind, feed.base_url)
    except ConfigError as exc:
        raise InvalidChange(f"feed {feed.name!r} is invalid: {exc}") from exc
    try:
        await conn.execute(
            f"INSERT INTO feeds ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                feed.name, feed.kind, feed.base_url, feed.secret_env, feed.priority,
                list(feed.competitions), feed.poll_live_s, feed.poll_idle_s,
                feed.budget_per_minute, feed.enabled, feed.max_body_bytes,
            ),
        )  # fmt: skip
    except psycopg.errors.UniqueViolation as exc:
        raise Conflict(f"a feed named {feed.name!r} exists; pick another name") from exc
    except psycopg.errors.CheckViolation as exc:
        raise InvalidChange(f"feed {feed.name!r} is invalid: {exc.diag.message_primary}") from exc
    return await get_feed(conn, feed.name)


async def get_feed(conn: Conn, name: str) -> FeedConfig:
    cur = await conn.execute(f"SELECT {_COLUMNS} FROM feeds WHERE name = %s", (name,))
    row = await cur.fetchone()
    if row is None:
        raise NotFound("feed", name)
    return _config(row)


async def list_feeds(conn: Conn, *, enabled_only: bool = False) -> list[FeedConfig]:
    return await read_feed_list(await send_list_feeds(conn, enabled_only=enabled_only))


async def send_list_feeds(conn: Conn, *, enabled_only: bool = False) -> Cursor:
    """``list_feeds``'s statement (in pipeline mode: only sent); its answer is
    ``read_feed_list``'s."""
    sql = f"SELECT {_COLUMNS} FROM feeds"
    if enabled_only:
        sql += " WHERE enabled"
    return await conn.execute(sql + " ORDER BY priority, name")


async def read_feed_list(cur: Cursor) -> list[FeedConfig]:
    return [_config(row) for row in await cur.fetchall()]


async def set_enabled(conn: Conn, name: str, enabled: bool) -> FeedConfig:
    cur = await conn.execute(
        "UPDATE feeds SET enabled = %s, updated_at = now() WHERE name = %s RETURNING name",
        (enabled, name),
    )
    if await cur.fetchone() is None:
        raise NotFound("feed", name)
    return await get_feed(conn, name)


async def remove_feed(conn: Conn, name: str) -> None:
    """Delete feed ``name``. What it observed stays: its observations and crosswalk rows
    (keyed by the feed's name, no foreign key) keep the matches' history explainable; a
    feed added again under the same name takes them over."""
    cur = await conn.execute("DELETE FROM feeds WHERE name = %s RETURNING name", (name,))
    if await cur.fetchone() is None:
        raise NotFound("feed", name)


async def priorities(conn: Conn) -> dict[str, int]:
    cur = await conn.execute("SELECT name, priority FROM feeds")
    return {row["name"]: row["priority"] for row in await cur.fetchall()}
