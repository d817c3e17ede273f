"""``livescore standings rules|show`` in subprocesses against this run's
database and a Redis prefix of the test's own: rules shown, set, kept,
reset and announced on the standings channel; tables printed per group."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson
import pytest
import redis.asyncio as aioredis

from livescore.keys import Keys
from livescore.model import MatchPatch, MatchStatus
from livescore.standings import Rules, changed_competition
from store.db import Conn, Pool
from store.standings import own_rules, rules_of
from store.writes import apply_change
from tests.conftest import Services
from tests.factories import Factory
from tests.pipeline.conftest import Cli, ok
from tests.waiting import eventually

pytestmark = pytest.mark.slow


@pytest.fixture
def cli(services: Services, keys: Keys, pool: Pool) -> Cli:
    return Cli(services, keys, "standings")


async def test_rules_are_shown_set_option_by_option_and_reset(
    cli: Cli, factory: Factory, conn: Conn
) -> None:
    comp = await factory.competition("Rules Cup")
    assert ok(await cli("rules", str(comp))).splitlines() == [
        f"competition {comp} Rules Cup: win 3, draw 1, loss 0, season starts in month 7 "
        "(the defaults)"
    ]
    out = ok(await cli("rules", str(comp), "--win", "2", "--season-start-month", "1"))
    assert out.splitlines()[0].endswith("win 2, draw 1, loss 0, season starts in month 1 (its own)")
    assert "subscribers get the new table" in out
    # an option not given keeps its value
    ok(await cli("rules", str(comp), "--loss", "-1"))
    assert await own_rules(conn, comp) == Rules(2, 1, -1, 1)
    ok(await cli("rules", str(comp), "--reset"))
    assert await own_rules(conn, comp) is None
    assert (await rules_of(conn, comp))[1] == Rules()


async def test_bad_rules_are_usage_errors_and_an_unknown_competition_one_line(
    cli: Cli, factory: Factory
) -> None:
    comp = await factory.competition("Strict Cup")
    assert (await cli("rules", str(comp), "--season-start-month", "13")).returncode == 2
    assert (await cli("rules", str(comp), "--win", "101")).returncode == 2
    assert (await cli("rules", str(comp), "--reset", "--win", "2")).returncode == 2
    missing = await cli("rules", "987654321", "--win", "2")
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert "987654321" in missing.stderr


async def test_a_rules_change_is_announced_on_the_standings_channel(
    cli: Cli, factory: Factory, redis: aioredis.Redis, keys: Keys
) -> None:
    comp = await factory.competition("Signal Cup")
    pubsub = redis.pubsub()
    await pubsub.subscribe(keys.standings_channel)
    try:
        ok(await cli("rules", str(comp), "--draw", "2"))
        heard: list[int] = []

        async def announced() -> bool:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
            if message is not None:
                heard.append(changed_competition(message["data"]))
            return comp in heard

        await eventually(announced)
        # showing the rules changes nothing and announces nothing
        ok(await cli("rules", str(comp)))
        await asyncio.sleep(0.5)
        assert await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5) is None
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]


async def test_show_prints_one_table_per_group_with_the_competitions_points(
    cli: Cli, factory: Factory, conn: Conn
) -> None:
    comp = await factory.competition("Group Cup")
    kickoff = datetime(2026, 6, 12, 19, tzinfo=UTC)
    for home, away, score, group in (
        ("Canada", "Bosnia", (1, 1), "Group B"),
        ("USA", "Paraguay", (4, 1), "Group D"),
    ):
        match = await factory.match(home=home, away=away, competition=comp, start_time=kickoff)
        await apply_change(
            conn, match["id"], MatchPatch(source="t", status=MatchStatus.LIVE, group=group)
        )
        await apply_change(
            conn,
            match["id"],
            MatchPatch(
                source="t",
                status=MatchStatus.FINISHED,
                home_score=score[0],
                away_score=score[1],
            ),
        )
    ok(await cli("rules", str(comp), "--win", "2", "--season-start-month", "1"))
    out = ok(await cli("show", str(comp), "--season", "2026")).splitlines()
    assert out[0] == f"Group Cup (competition {comp}), season 2026: win 2, draw 1, loss 0, " + (
        "live matches as they stand (*)"
    )
    assert out.index("Group B") < out.index("Group D")
    usa = next(line for line in out if " USA " in line)
    assert usa.split()[:2] == ["1", "USA"] and usa.split()[-2:] == ["2", "W"]
    data = orjson.loads(ok(await cli("show", str(comp), "--season", "2026", "--json")))
    assert [t["group"] for t in data["tables"]] == ["Group B", "Group D"]
    assert data["rules"] == {"win": 2, "draw": 1, "loss": 0}
