"""GET /api/competitions/{id}/standings against a real edge node: the table of
our own results (finished and, unless live=false, in-play matches), seasons,
per-competition points, ETag/304, 400/404, and a published change moving it."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from livescore import clock
from livescore.model import MatchPatch, MatchStatus
from livescore.standings import Rules
from store.db import Conn
from store.standings import set_rules
from store.writes import Change, apply_change
from tests.edge.conftest import EdgeNode, publish
from tests.factories import Factory
from tests.waiting import eventually

pytestmark = pytest.mark.slow


async def play(
    conn: Conn, match_id: int, home: int, away: int, status: MatchStatus
) -> list[Change]:
    """Move a scheduled match to ``status`` (through live) with the score home-away."""
    changes = await apply_change(conn, match_id, MatchPatch(source="test", status=MatchStatus.LIVE))
    changes += await apply_change(
        conn,
        match_id,
        MatchPatch(
            source="test",
            status=None if status is MatchStatus.LIVE else status,
            home_score=home,
            away_score=away,
        ),
    )
    return changes


async def league(factory: Factory, conn: Conn) -> tuple[int, dict[str, int], list[int]]:
    """A competition: Ajax 2-1 Benfica (finished), Benfica 1-1 Celtic (live),
    Celtic v Ajax (scheduled)."""
    tag = secrets.token_hex(3)
    comp = await factory.competition(f"League {tag}")
    teams = {n: await factory.team(f"{n} {tag}") for n in ("Ajax", "Benfica", "Celtic")}
    now = clock.now().replace(microsecond=0)
    m1 = await factory.match(
        home=teams["Ajax"],
        away=teams["Benfica"],
        competition=comp,
        start_time=now - timedelta(days=1),
    )
    m2 = await factory.match(
        home=teams["Benfica"],
        away=teams["Celtic"],
        competition=comp,
        start_time=now - timedelta(minutes=30),
    )
    m3 = await factory.match(
        home=teams["Celtic"],
        away=teams["Ajax"],
        competition=comp,
        start_time=now + timedelta(days=1),
    )
    await play(conn, m1["id"], 2, 1, MatchStatus.FINISHED)
    await play(conn, m2["id"], 1, 1, MatchStatus.LIVE)
    return comp, teams, [m1["id"], m2["id"], m3["id"]]


def table(body: dict[str, Any]) -> list[tuple[str, int, int, int, str, bool]]:
    (only,) = body["data"]["tables"]
    assert only["group"] is None
    return [
        (
            r["team"]["name"].split()[0],
            r["position"],
            r["played"],
            r["points"],
            r["form"],
            r["provisional"],
        )
        for r in only["rows"]
    ]


async def test_finished_matches_count_and_live_ones_count_as_they_stand(
    edge: EdgeNode, factory: Factory, conn: Conn
) -> None:
    comp, _, _ = await league(factory, conn)
    async with httpx.AsyncClient(base_url=edge.url) as http:
        live = (await http.get(f"/api/competitions/{comp}/standings")).json()
        final = (await http.get(f"/api/competitions/{comp}/standings?live=false")).json()
    assert table(live) == [
        ("Ajax", 1, 1, 3, "W", False),
        ("Celtic", 2, 1, 1, "D", True),
        ("Benfica", 3, 2, 1, "LD", True),
    ]
    assert live["data"]["live"] is True and live["data"]["provisional"] is True
    assert live["data"]["rules"] == {"win": 3, "draw": 1, "loss": 0}
    assert live["data"]["season"] in live["data"]["seasons"]
    assert table(final) == [
        ("Ajax", 1, 1, 3, "W", False),
        ("Celtic", 2, 0, 0, "", False),  # goal difference 0 beats Benfica's -1
        ("Benfica", 3, 1, 0, "L", False),
    ]
    assert final["data"]["provisional"] is False
    row = live["data"]["tables"][0]["rows"][0]
    assert (row["goalsFor"], row["goalsAgainst"], row["goalDifference"]) == (2, 1, 1)


async def test_points_follow_the_competitions_own_rules(
    edge: EdgeNode, factory: Factory, conn: Conn
) -> None:
    comp, _, _ = await league(factory, conn)
    await set_rules(conn, comp, Rules(win=2, draw=1, loss=0))
    async with httpx.AsyncClient(base_url=edge.url) as http:
        body = (await http.get(f"/api/competitions/{comp}/standings?live=false")).json()
    assert body["data"]["rules"] == {"win": 2, "draw": 1, "loss": 0}
    assert table(body)[0][3] == 2


async def test_a_season_is_asked_by_the_year_it_starts_in(
    edge: EdgeNode, factory: Factory, conn: Conn
) -> None:
    tag = secrets.token_hex(3)
    comp = await factory.competition(f"Seasons {tag}")
    old = await factory.match(
        home=f"Old A {tag}",
        away=f"Old B {tag}",
        competition=comp,
        start_time=datetime(2020, 9, 1, 15, tzinfo=UTC),
    )
    await play(conn, old["id"], 0, 3, MatchStatus.FINISHED)
    async with httpx.AsyncClient(base_url=edge.url) as http:
        body = (await http.get(f"/api/competitions/{comp}/standings?season=2020")).json()
        empty = (await http.get(f"/api/competitions/{comp}/standings?season=2021")).json()
        default = (await http.get(f"/api/competitions/{comp}/standings")).json()
    assert body["data"]["season"] == 2020 and body["data"]["seasons"] == [2020]
    assert [r["team"]["name"] for r in body["data"]["tables"][0]["rows"]] == [
        f"Old B {tag}",
        f"Old A {tag}",
    ]
    assert empty["data"]["tables"] == [{"group": None, "rows": []}]
    # no match in the current season: the latest season before it
    assert default["data"]["season"] == 2020


async def test_standings_have_an_etag_and_answer_304(
    edge: EdgeNode, factory: Factory, conn: Conn
) -> None:
    comp, _, _ = await league(factory, conn)
    path = f"/api/competitions/{comp}/standings"
    async with httpx.AsyncClient(base_url=edge.url) as http:
        first = await http.get(path)
        etag = first.headers["etag"]
        again = await http.get(path, headers={"If-None-Match": etag})
    assert first.headers["cache-control"] == "no-cache"
    assert again.status_code == 304 and again.content == b""


async def test_unknown_competitions_are_404_and_bad_parameters_400(edge: EdgeNode) -> None:
    async with httpx.AsyncClient(base_url=edge.url) as http:
        missing = await http.get("/api/competitions/987654321/standings")
        bad_live = await http.get("/api/competitions/1/standings?live=maybe")
        bad_season = await http.get("/api/competitions/1/standings?season=99")
        unknown = await http.get("/api/competitions/1/standings?group=A")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert bad_live.status_code == 400 and "live" in bad_live.json()["error"]["message"]
    assert bad_season.status_code == 400
    assert unknown.status_code == 400


async def test_a_published_goal_moves_the_served_table(
    edge: EdgeNode, factory: Factory, conn: Conn, redis: aioredis.Redis
) -> None:
    comp, _, matches = await league(factory, conn)
    path = f"/api/competitions/{comp}/standings"
    async with httpx.AsyncClient(base_url=edge.url) as http:
        before = (await http.get(path)).json()
        assert table(before)[1][0] == "Celtic"
        goal = await apply_change(
            conn, matches[1], MatchPatch(source="test", home_score=2, away_score=1)
        )
        await publish(redis, edge.keys, goal)

        async def benfica_second() -> bool:
            body = (await http.get(path)).json()
            return bool(table(body)[1][:4] == ("Benfica", 2, 2, 3))

        await eventually(benfica_second)
        after = (await http.get(path)).json()
    assert table(after)[1][:4] == ("Benfica", 2, 2, 3)
    assert after["data"]["seq"] > before["data"]["seq"]
