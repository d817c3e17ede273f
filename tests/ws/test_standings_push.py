"""``standings:update`` against real edge nodes and the real relay: a competition's
subscribers get the table whenever a result or a live score moves it (on /ws and
/sse), a match's subscribers do not, and a burst of goals for many subscribers
costs the node a few table reads, not one per client."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from livescore import clock
from livescore.keys import Keys
from livescore.model import MatchPatch, MatchStatus
from pipeline.relay import Relay
from store.db import Conn
from store.writes import apply_change
from tests.conftest import Services
from tests.factories import Factory
from tests.ws.conftest import EdgeFactory
from tests.ws.helpers import WsClient, metric, ws_url

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


async def league(factory: Factory, conn: Conn) -> tuple[int, int, int]:
    """A competition with a finished match (Home 1-0 Away) and a live one (0-0)."""
    tag = secrets.token_hex(3)
    comp = await factory.competition(f"Push League {tag}")
    now = clock.now().replace(microsecond=0)
    done = await factory.match(
        home=f"Home {tag}", away=f"Away {tag}", competition=comp, start_time=now - timedelta(days=2)
    )
    await apply_change(conn, done["id"], MatchPatch(source="t", status=MatchStatus.LIVE))
    await apply_change(
        conn,
        done["id"],
        MatchPatch(source="t", status=MatchStatus.FINISHED, home_score=1, away_score=0),
    )
    live = await factory.match(
        home=f"Third {tag}", away=f"Fourth {tag}", competition=comp, start_time=now
    )
    await apply_change(conn, live["id"], MatchPatch(source="t", status=MatchStatus.LIVE))
    return comp, done["id"], live["id"]


def standings(client: WsClient) -> list[dict[str, Any]]:
    return [f for f in client.frames if f["type"] == "standings:update"]


def leader(frame: dict[str, Any]) -> tuple[str, int, bool]:
    row = frame["data"]["tables"][0]["rows"][0]
    return row["team"]["name"].split()[0], row["points"], row["provisional"]


async def goal(conn: Conn, match_id: int, home: int, away: int = 0) -> None:
    await apply_change(conn, match_id, MatchPatch(source="t", home_score=home, away_score=away))


async def test_a_live_goal_pushes_the_table_to_the_competitions_subscribers(
    edges: EdgeFactory, relay: Relay, factory: Factory, conn: Conn
) -> None:
    (node,) = edges(1)
    comp, _, live = await league(factory, conn)
    async with WsClient(ws_url(node)) as fan, WsClient(ws_url(node)) as match_only:
        answer = await fan.request({"action": "subscribe", "competitionId": comp})
        assert answer["type"] == "subscribed" and answer["competitionId"] == comp
        await match_only.request({"action": "subscribe", "matchId": live})
        await goal(conn, live, 2)
        frame = await fan.wait_for(
            lambda f: f["type"] == "standings:update" and leader(f)[0] == "Third"
        )
        # the frame that shows the goal is a change of the match the fan also gets
        await fan.wait_for(lambda f: f["type"] == "score:update" and f["matchId"] == live)
        await match_only.wait_for(lambda f: f["type"] == "score:update")
    assert frame["competitionId"] == comp and frame["cause"]["matchId"] == live
    assert leader(frame) == ("Third", 3, True)  # as it stands: provisional
    assert frame["data"]["live"] is True and frame["data"]["provisional"] is True
    # the version a REST read gives for the same table
    async with httpx.AsyncClient(base_url=node.url) as http:
        rest = (await http.get(f"/api/competitions/{comp}/standings")).json()["data"]
    assert frame["seq"] == frame["data"]["seq"] == rest["seq"]
    assert frame["data"]["tables"] == rest["tables"]
    assert standings(match_only) == []


async def test_full_time_pushes_the_final_table_without_provisional_rows(
    edges: EdgeFactory, relay: Relay, factory: Factory, conn: Conn
) -> None:
    (node,) = edges(1)
    comp, _, live = await league(factory, conn)
    async with WsClient(ws_url(node)) as fan:
        await fan.request({"action": "subscribe", "competitionId": comp})
        await goal(conn, live, 0, 3)
        await fan.wait_for(lambda f: f["type"] == "standings:update" and leader(f)[0] == "Fourth")
        await apply_change(conn, live, MatchPatch(source="t", status=MatchStatus.FINISHED))
        final = await fan.wait_for(
            lambda f: f["type"] == "standings:update" and not f["data"]["provisional"]
        )
    assert leader(final) == ("Fourth", 3, False)
    seqs = [f["seq"] for f in standings(fan)]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)  # newer tables, higher seq


async def test_a_competition_subscriber_gets_the_current_table_right_after_subscribed(
    edges: EdgeFactory, factory: Factory, conn: Conn
) -> None:
    (node,) = edges(1)
    comp, _, live = await league(factory, conn)
    async with WsClient(ws_url(node)) as fan:
        start = len(fan.frames)
        await fan.send({"action": "subscribe", "competitionId": comp})
        await fan.wait_for(lambda f: f.get("matchId") == live, start=start)
    frames = fan.frames[start:]
    assert frames[0]["type"] == "subscribed" and frames[0]["competitionId"] == comp
    table = frames[1]
    assert table["type"] == "standings:update" and table["competitionId"] == comp
    assert table["cause"] is None  # no change caused it: the subscription did
    assert leader(table) == ("Home", 3, False)
    # then the competition's matches, as before
    assert {f["matchId"] for f in frames[2:] if f["type"] == "subscribed"} >= {live}
    async with httpx.AsyncClient(base_url=node.url) as http:
        rest = (await http.get(f"/api/competitions/{comp}/standings")).json()["data"]
    assert table["data"] == rest and table["seq"] == rest["seq"]


async def test_changing_the_rules_pushes_the_table_with_them_and_the_rest_read_follows(
    edges: EdgeFactory, factory: Factory, conn: Conn, services: Services, keys: Keys
) -> None:
    (node,) = edges(1)
    comp, _, _ = await league(factory, conn)
    path = f"/api/competitions/{comp}/standings"
    async with WsClient(ws_url(node)) as fan, httpx.AsyncClient(base_url=node.url) as http:
        await fan.request({"action": "subscribe", "competitionId": comp})
        first = await fan.wait_for(lambda f: f["type"] == "standings:update")
        assert (await http.get(path)).json()["data"]["rules"]["win"] == 3  # cached now
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "cli", "standings", "rules", str(comp), "--win", "2"],
            capture_output=True,
            text=True,
            env=services.env(LIVESCORE_REDIS_PREFIX=keys.prefix),
            cwd=ROOT,
            timeout=90,
        )
        assert result.returncode == 0, result.stderr
        pushed = await fan.wait_for(
            lambda f: f["type"] == "standings:update" and f["data"]["rules"]["win"] == 2
        )
        served = (await http.get(path)).json()["data"]  # the cached page was dropped
    assert leader(pushed) == ("Home", 2, False) and pushed["cause"] is None
    assert pushed["seq"] == first["seq"]  # no match changed: the same version, new rules
    assert served["rules"]["win"] == 2 and served["tables"] == pushed["data"]["tables"]


async def test_a_burst_for_many_subscribers_costs_a_few_reads_not_one_per_client(
    edges: EdgeFactory, relay: Relay, factory: Factory, conn: Conn
) -> None:
    (node,) = edges(1)
    comp, _, live = await league(factory, conn)
    clients = [WsClient(ws_url(node)) for _ in range(20)]
    for client in clients:
        await client.__aenter__()
    try:
        for client in clients:
            await client.request({"action": "subscribe", "competitionId": comp})
        before = metric(node, "livescore_standings_reads_total")
        goals = 8
        for n in range(1, goals + 1):
            await goal(conn, live, n)
        for client in clients:
            last = await client.wait_for(
                lambda f: (
                    f["type"] == "standings:update"
                    and f["data"]["tables"][0]["rows"][0]["goalsFor"] == goals
                )
            )
            assert leader(last)[0] == "Third"
        reads = metric(node, "livescore_standings_reads_total") - before
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    # at most one read per change (debounced: usually one or two), never per client
    assert 1 <= reads <= goals < len(clients)


async def test_an_sse_stream_of_the_competition_gets_standings_events(
    edges: EdgeFactory, relay: Relay, factory: Factory, conn: Conn
) -> None:
    (node,) = edges(1)
    comp, _, live = await league(factory, conn)
    async with (
        httpx.AsyncClient(base_url=node.url, timeout=10) as http,
        http.stream("GET", f"/sse?competitionId={comp}") as response,
    ):
        assert response.status_code == 200
        lines = response.aiter_lines()

        async def next_event() -> tuple[str, dict[str, Any]]:
            fields: dict[str, str] = {}
            async for line in lines:
                if line == "" and "data" in fields:
                    return fields["event"], orjson.loads(fields["data"])
                if line and not line.startswith(":"):
                    name, _, value = line.partition(": ")
                    fields[name] = value
            raise EOFError("the stream ended")

        # its subscribed frame, the current table at once; then the goal
        kinds = [(await asyncio.wait_for(next_event(), 15))[0] for _ in range(2)]
        assert kinds == ["subscribed", "standings:update"]
        await goal(conn, live, 2)  # 2-0: ahead of Home (1-0) on goal difference

        async def table_led_by_third() -> dict[str, Any]:
            # a push for the league's own setup (relayed after the stream opened) may
            # come first: the goal's table is the one led by Third
            while True:
                kind, data = await next_event()
                if kind == "standings:update" and leader(data) == ("Third", 3, True):
                    return data

        data = await asyncio.wait_for(table_led_by_third(), 20)
    assert data["competitionId"] == comp
