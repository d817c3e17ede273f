"""Cheap no-ops (issue 15): each worker remembers each feed's latest fingerprint
per match; a repeat is confirmed against PostgreSQL for the whole response in one
statement, and a remembered fingerprint that another worker superseded never
suppresses a real change."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import pytest

from livescore.model import MatchObservation
from pipeline.decision import ReconcilePolicy
from pipeline.ingest import IngestReport, ingest_observations, seen_cache
from store.db import Conn, Pool, open_pool
from store.matches import get_match
from tests.conftest import Services
from tests.pipeline.builders import KICKOFF, match_ids, minutes, obs, observation_rows

POLICY = ReconcilePolicy()
PRIORITIES = {"alpha": 10}
T0 = KICKOFF + minutes(30)


@pytest.fixture
async def other_worker(services: Services, pool: Pool) -> AsyncIterator[Pool]:
    """A second worker process's pool (its own SeenCache) on the same database."""
    other = await open_pool(services.database_url, max_size=2, name="other-worker")
    try:
        yield other
    finally:
        await other.close()


async def ingest(pool: Pool, *batch: MatchObservation, at: datetime) -> IngestReport:
    return await ingest_observations(
        pool, "alpha", batch, at=at, priorities=PRIORITIES, policy=POLICY
    )


async def score(conn: Conn) -> tuple[int, int]:
    (match_id,) = await match_ids(conn)
    match = await get_match(conn, match_id)
    return match["homeScore"], match["awayScore"]


async def test_a_repeat_is_confirmed_from_memory_and_only_marks_the_observation_seen(
    pool: Pool, conn: Conn
) -> None:
    seen = obs("alpha", "a-1", score=(1, 0), minute=30)
    await ingest(pool, seen, at=T0)
    assert seen_cache(pool).get("alpha", "a-1") is not None
    again = await ingest(pool, seen, at=T0 + minutes(1))
    assert (again.observations, again.new_observations, again.changes) == (1, 0, [])
    rows = await observation_rows(conn, "alpha")
    assert len(rows) == 1
    assert rows[0]["observed_at"] == T0 + minutes(1)  # still fresh


async def test_a_fingerprint_another_worker_superseded_never_suppresses_the_change_back(
    pool: Pool, other_worker: Pool, conn: Conn
) -> None:
    one_nil = obs("alpha", "a-1", score=(1, 0), minute=30)
    await ingest(pool, one_nil, at=T0)  # worker A remembers 1-0
    corrected = obs("alpha", "a-1", score=(0, 0), minute=31)
    await ingest(other_worker, corrected, at=T0 + minutes(1))  # worker B: the goal is gone
    assert await score(conn) == (0, 0)
    again = obs("alpha", "a-1", score=(1, 0), minute=30)
    report = await ingest(pool, again, at=T0 + minutes(2))  # A: 1-0 again, a real change
    assert report.changes
    assert await score(conn) == (1, 0)


async def test_a_restarted_worker_starts_with_nothing_remembered_and_changes_nothing_twice(
    pool: Pool, other_worker: Pool, conn: Conn
) -> None:
    seen = obs("alpha", "a-1", score=(2, 1), minute=30)
    await ingest(pool, seen, at=T0)
    report = await ingest(other_worker, seen, at=T0 + minutes(1))
    assert (report.new_observations, report.changes) == (0, [])
    assert len(await observation_rows(conn, "alpha")) == 1
    assert seen_cache(other_worker).get("alpha", "a-1") is not None


async def test_a_view_that_went_stale_is_reconciled_again_when_it_comes_back(
    pool: Pool, conn: Conn
) -> None:
    seen = obs("alpha", "a-1", score=(1, 0), minute=30)
    await ingest(pool, seen, at=T0)
    (match_id,) = await match_ids(conn)
    await conn.execute("UPDATE matches SET stale = true WHERE id = %s", (match_id,))
    # four minutes later (stale_after is three) the same data is not a no-op
    await ingest(pool, seen, at=T0 + minutes(4))
    assert (await get_match(conn, match_id))["stale"] is False
