"""A World Cup day through the real pipeline (the recorded world-cup-day
responses of ESPN and TheSportsDB parsed by their adapters, ingested, resolved
and reconciled into PostgreSQL), then read from a real edge node: each match
carries its group, and the standings are one table per group."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.decision import ReconcilePolicy
from pipeline.ingest import ingest_observations
from pipeline.replay import register_feeds
from providers.base import RawResponse
from providers.fixture import FixtureFeed
from providers.registry import adapter_for
from store import crosswalk
from store import feeds as store_feeds
from store.db import Conn, Pool
from store.matches import get_match
from tests.edge.conftest import EdgeNode

pytestmark = pytest.mark.slow

DAY = Path(__file__).resolve().parents[2] / "fixtures" / "world-cup-day"
# ESPN's event ids: Canada v Bosnia-Herzegovina (Group B), United States v Paraguay (Group D)
CAN_BIH, USA_PAR = "760416", "760417"


def last(recording: FixtureFeed, feed: str, purpose: str) -> RawResponse:
    return [r for r in recording.responses if (r.feed, r.purpose) == (feed, purpose)][-1]


async def ingest(pool: Pool, conn: Conn, recording: FixtureFeed, response: RawResponse) -> None:
    adapter = adapter_for(recording.feed_configs()[response.feed])
    await ingest_observations(
        pool,
        response.feed,
        adapter.parse(response),
        at=response.fetched_at,
        priorities=await store_feeds.priorities(conn),
        policy=ReconcilePolicy(),
    )


async def match_of(conn: Conn, provider: str, provider_id: str) -> dict[str, Any]:
    """The match as the REST API shapes it (read from the store: no relay runs here,
    so the edge's match cache would not hear of the changes)."""
    match_id = await crosswalk.lookup(conn, "match", provider, provider_id)
    assert match_id is not None
    return await get_match(conn, match_id)


async def test_a_world_cup_day_with_two_groups_gets_two_tables(
    edge: EdgeNode, pool: Pool, conn: Conn
) -> None:
    recording = FixtureFeed(DAY)
    await register_feeds(conn, recording)
    # TheSportsDB first (its v1 day list names the group: strGroup "D"), then its v2
    # live rows (no group: the group must stay), then ESPN (altGameNote "Group B"/"D")
    await ingest(pool, conn, recording, last(recording, "thesportsdb", "today"))
    await ingest(pool, conn, recording, last(recording, "thesportsdb", "live"))
    kept = await match_of(conn, "thesportsdb", "2391881")
    assert (kept["stage"], kept["group"]) == (None, "Group D")
    await ingest(pool, conn, recording, last(recording, "espn", "today"))
    usa = await match_of(conn, "espn", USA_PAR)
    can = await match_of(conn, "espn", CAN_BIH)
    assert usa["id"] == kept["id"]  # one match for both feeds
    assert (usa["stage"], usa["group"]) == ("group_stage", "Group D")
    assert usa["competition"]["id"] == can["competition"]["id"]
    async with httpx.AsyncClient(base_url=edge.url) as http:
        served = (await http.get(f"/api/matches/{can['id']}")).json()["data"]
        body = (await http.get(f"/api/competitions/{usa['competition']['id']}/standings")).json()
    assert (served["stage"], served["group"]) == ("group_stage", "Group B")
    tables = body["data"]["tables"]
    assert [t["group"] for t in tables] == ["Group B", "Group D"]
    group_b, group_d = ({r["team"]["id"]: r for r in t["rows"]} for t in tables)
    assert set(group_b) == {can["homeTeam"]["id"], can["awayTeam"]["id"]}
    assert set(group_d) == {usa["homeTeam"]["id"], usa["awayTeam"]["id"]}
    assert [r["points"] for r in tables[0]["rows"]] == [1, 1]  # 1-1
    usa_row = group_d[usa["homeTeam"]["id"]]
    assert (usa_row["position"], usa_row["points"], usa_row["goalsFor"]) == (1, 3, 4)
    assert group_d[usa["awayTeam"]["id"]]["points"] == 0
