"""What an edge worker's ``/health`` watch (``edge.watch``) reads of PostgreSQL
each second, in one round trip: the stale in-play matches, the relay's backlog
and held matches, and the enabled feeds. Each read is its own module's
(``store.coverage``, ``store.changes``, ``store.feeds``); here they are sent
together in pipeline mode, so a worker's reading costs the database one
exchange instead of four (every worker of every node reads every second).
"""

from __future__ import annotations

from dataclasses import dataclass

from livescore.feeds import FeedConfig
from store import changes, coverage, feeds
from store.changes import Backlog
from store.db import Conn


@dataclass(frozen=True, slots=True)
class PipelineRows:
    stale: int
    backlog: Backlog
    feeds: list[FeedConfig]


async def read_pipeline_rows(conn: Conn) -> PipelineRows:
    async with conn.pipeline():
        stale = await coverage.send_stale_count(conn)
        backlog = await changes.send_backlog(conn)
        enabled = await feeds.send_list_feeds(conn, enabled_only=True)
        return PipelineRows(
            await coverage.read_stale_count(stale),
            await changes.read_backlog(backlog),
            await feeds.read_feed_list(enabled),
        )
