"""Benchmark: replay throughput at --speed 0 next to the raw write path.

    .venv/bin/python bench/replay.py [--rounds 3] [--writes 3000]

Uses DATABASE_URL/REDIS_URL when set, else the embedded servers. Creates a
scratch database (dropped at the end) and a private Redis prefix. Prints,
from the same run:

* the baseline: changes/s through ``store.writes.apply_change`` alone (one
  score change per transaction, sequential, as replay applies them);
* each shipped fixture replayed at speed 0 into an empty schema: responses/s,
  observations/s and changes/s applied end to end (parse, resolve, record,
  reconcile, write, relay);
* the ratio of the two change rates.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import interrupt_on_sigterm  # noqa: E402

from livescore import clock  # noqa: E402
from livescore.config import Settings, load_settings  # noqa: E402
from livescore.model import MatchPatch  # noqa: E402
from livescore.runtime import Endpoints, resolve  # noqa: E402
from pipeline.context import PipelineContext  # noqa: E402
from pipeline.replay import replay  # noqa: E402
from store.admin import create_database, drop_database  # noqa: E402
from store.db import connect, open_pool  # noqa: E402
from store.matches import NewMatch, create_match  # noqa: E402
from store.migrate import migrate  # noqa: E402
from store.reference import get_or_create_team  # noqa: E402
from store.writes import apply_change  # noqa: E402

FIXTURES = ["premier-league-matchday", "cup-final-shootout", "world-cup-day"]
TABLES = (
    "override_audit, overrides, observations, match_crosswalk, team_crosswalk, "
    "competition_crosswalk, events, match_changes, matches, teams, competitions, feeds"
)


async def baseline(dsn: str, writes: int) -> float:
    pool = await open_pool(dsn, max_size=2)
    try:
        async with pool.connection() as conn:
            home = await get_or_create_team(conn, "Bench Home")
            away = await get_or_create_team(conn, "Bench Away")
            ids = []
            for _ in range(20):
                match = await create_match(
                    conn,
                    NewMatch(home, away, start_time=clock.now()),
                )
                ids.append(match["id"])
            started = time.perf_counter()
            for i in range(writes):
                await apply_change(
                    conn,
                    ids[i % len(ids)],
                    MatchPatch("bench", home_score=i // len(ids) + 1, away_score=0),
                )
            return writes / (time.perf_counter() - started)
    finally:
        await pool.close()


async def replay_rate(
    settings: Settings, endpoints: Endpoints, fixture: str
) -> tuple[float, float, float, int]:
    ctx = await PipelineContext.open(settings, endpoints)
    try:
        async with ctx.pool.connection() as conn:
            await conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
        started = time.perf_counter()
        result = await replay(ctx, ROOT / "fixtures" / fixture, speed=0)
        elapsed = time.perf_counter() - started
        changes = len(result.report.changes)
        return (
            result.responses / elapsed,
            result.report.observations / elapsed,
            changes / elapsed,
            changes,
        )
    finally:
        await ctx.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--writes", type=int, default=3000)
    args = parser.parse_args()

    os.environ.setdefault("LIVESCORE_LOG_LEVEL", "WARNING")
    os.environ["LIVESCORE_REDIS_PREFIX"] = f"bench-{secrets.token_hex(3)}"
    settings = load_settings()
    endpoints = resolve(settings)
    dbname = f"livescore_bench_{secrets.token_hex(3)}"
    dsn = create_database(endpoints.database_url, dbname)
    bench_endpoints = Endpoints(dsn, endpoints.redis_url, False, False)
    try:
        conn = await connect(dsn)
        async with conn:
            await migrate(conn)
        base = [await baseline(dsn, args.writes) for _ in range(args.rounds)]
        where = "embedded" if endpoints.embedded_postgres else "external"
        print(f"machine: {os.cpu_count()} cpus; postgres {where}")
        print(f"{'what':<34}{'responses/s':>12}{'obs/s':>10}{'changes/s':>11}{'vs raw':>8}")
        raw = statistics.median(base)
        print(f"{'raw write path (apply_change)':<34}{'':>12}{'':>10}{raw:>11.0f}{1.0:>8.2f}")
        for fixture in FIXTURES:
            runs = [
                await replay_rate(settings, bench_endpoints, fixture) for _ in range(args.rounds)
            ]
            resp = statistics.median(r[0] for r in runs)
            obs = statistics.median(r[1] for r in runs)
            chg = statistics.median(r[2] for r in runs)
            print(
                f"{'replay ' + fixture:<34}{resp:>12.0f}{obs:>10.0f}{chg:>11.0f}{chg / raw:>8.2f}"
                f"   ({runs[0][3]} changes)"
            )
        print(f"(median of {args.rounds} rounds; {args.writes} writes per baseline round)")
    finally:
        drop_database(endpoints.database_url, dbname)


if __name__ == "__main__":
    interrupt_on_sigterm()
    asyncio.run(main())
