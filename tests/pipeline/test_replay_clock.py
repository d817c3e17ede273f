"""The running clock in a replay: derived from the replay's virtual clock (the
recorded fetch times, shifted), so a replay at speed, shifted to "now", gives
the same clock values moved by the shift, each consistent with its change's
own time, and never turning back within a period."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from livescore import clock
from livescore.matchclock import MINUTE
from pipeline.context import PipelineContext
from pipeline.replay import replay
from pipeline.timeshift import offset_to_now
from providers.fixture import FixtureFeed
from store.changes import changes_since
from store.db import Pool
from tests.conftest import Services
from tests.pipeline.builders import match_ids
from tests.pipeline.conftest import FIXTURES, FreshDb, endpoints_for, make_settings

RECORDING = FIXTURES / "premier-league-matchday"


async def clocks(pool: Pool) -> dict[int, list[tuple[datetime, dict[str, Any]]]]:
    """Each match's clock payloads in seq order, with their change's time."""
    out: dict[int, list[tuple[datetime, dict[str, Any]]]] = {}
    async with pool.connection() as conn:
        for match_id in await match_ids(conn):
            out[match_id] = [
                (c.created_at, c.payload["clock"])
                for c in await changes_since(conn, match_id, 0, limit=100_000)
                if "clock" in c.payload and c.created_at is not None
            ]
    return out


async def replay_into(
    services: Services, database_url: str, *, speed: float, shift: timedelta | None
) -> dict[int, list[tuple[datetime, dict[str, Any]]]]:
    settings = make_settings(services, services.next_prefix(), DATABASE_URL=database_url)
    ctx = await PipelineContext.open(
        settings, endpoints_for(database_url, services.redis_url), pool_size=5
    )
    try:
        await replay(ctx, RECORDING, speed=speed, shift=shift)
        return await clocks(ctx.pool)
    finally:
        await ctx.close()


async def test_a_shifted_replay_at_speed_gives_the_same_clock_moved_by_the_shift(
    services: Services, pool: Pool, fresh_db: FreshDb
) -> None:
    recorded = await replay_into(services, services.database_url, speed=0, shift=None)
    # as the demo does: the first kickoff moments from now, the rest paced at 2000x
    shift = offset_to_now(FixtureFeed(RECORDING), clock.now(), timedelta(seconds=1))
    shifted = await replay_into(services, await fresh_db(), speed=2000, shift=shift)
    assert recorded.keys() == shifted.keys()
    running = 0
    for match_id, log in recorded.items():
        assert len(log) == len(shifted[match_id]), match_id
        last_start: datetime | None = None
        last_span: tuple[int, int] | None = None
        for (at, reported), (moved_at, moved) in zip(log, shifted[match_id], strict=True):
            assert moved_at == at + shift
            started = reported["periodStartedAt"]
            if started is None:
                assert moved == reported and not reported["running"]
                last_start = None
                continue
            running += 1
            start = datetime.fromisoformat(started)
            assert datetime.fromisoformat(moved["periodStartedAt"]) == start + shift
            assert {k: v for k, v in moved.items() if k != "periodStartedAt"} == {
                k: v for k, v in reported.items() if k != "periodStartedAt"
            }
            # at its change's own (virtual) time the tick shows at least the report
            total = reported["minute"] + (reported["addedTime"] or 0)
            assert start <= at - (total - reported["periodStartMinute"]) * MINUTE, (
                match_id,
                reported,
            )
            # ... and within a period the start never moves later (the tick never goes back)
            span = (reported["periodStartMinute"], reported["periodEndMinute"])
            if last_start is not None and span == last_span:
                assert start <= last_start, (match_id, reported)
            last_start, last_span = start, span
    assert running > 10  # the recording's matches ran their clocks
