"""Every REST endpoint of the contract, through a real ``livescore serve`` process,
including the original Live Score API's (/health, list, create, get, commentary
list and add) with the request bodies its clients send."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis.asyncio as aioredis

from livescore.model import EventType, MatchStatus
from store.db import Conn
from tests.edge.conftest import EdgeNode, auth
from tests.factories import Factory
from tests.waiting import eventually

pytestmark = pytest.mark.slow


def unique(label: str) -> str:
    return f"{label} {secrets.token_hex(3)}"


async def test_health_reports_dependencies_and_node(edge: EdgeNode) -> None:
    async with httpx.AsyncClient(base_url=edge.url) as http:
        response = await http.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["node"] == edge.node_id
    assert body["checks"]["postgres"]["ok"] and body["checks"]["redis"]["ok"]
    assert body["checks"]["queue"] == {"ok": True, "name": edge.keys.queue_name, "depth": 0}
    assert isinstance(body["staleMatches"], int)
    assert response.headers["cache-control"] == "no-store"


async def test_health_counts_queued_jobs_and_stale_live_matches(
    edge: EdgeNode, factory: Factory, conn: Conn, redis: aioredis.Redis
) -> None:
    match = await factory.match(status=MatchStatus.LIVE)
    async with httpx.AsyncClient(base_url=edge.url) as http:
        before = (await http.get("/health")).json()["staleMatches"]
        await conn.execute("UPDATE matches SET stale = true WHERE id = %s", (match["id"],))
        await redis.rpush(f"saq:{edge.keys.queue_name}:queued", "job-1", "job-2")

        async def counted() -> bool:
            # /health answers from the watch loop's reading, refreshed every second
            body = (await http.get("/health")).json()
            assert body["staleMatches"] == before + 1
            assert body["checks"]["queue"]["depth"] == 2
            return True

        await eventually(counted, 10, "/health to count the stale match and queued jobs")
    await redis.delete(f"saq:{edge.keys.queue_name}:queued")


async def test_create_match_like_a_live_score_api_client(edge: EdgeNode, api_key: str) -> None:
    home, away, cup = unique("Home FC"), unique("Away United"), unique("Cup")
    body = {
        "sport": "football",
        "homeTeam": home,
        "awayTeam": away,
        "startTime": "2026-12-01T19:45:00Z",
        "endTime": "2026-12-01T21:45:00+00:00",
        "competition": cup,
    }
    async with httpx.AsyncClient(base_url=edge.url) as http:
        created = await http.post("/api/matches", json=body, headers=auth(api_key))
        assert created.status_code == 201, created.text
        match = created.json()["data"]  # single objects are wrapped like lists
        assert created.headers["location"] == f"/api/matches/{match['id']}"
        assert match["homeTeam"]["name"] == home and isinstance(match["homeTeam"]["id"], int)
        assert match["awayTeam"]["name"] == away
        assert match["competition"]["name"] == cup
        assert match["startTime"] == "2026-12-01T19:45:00+00:00"
        assert match["status"] == "scheduled" and match["seq"] == 0
        assert (match["homeScore"], match["awayScore"]) == (0, 0)

        # the same names again resolve to the same canonical rows (by id or by name)
        again = await http.post(
            "/api/matches",
            json={
                "sport": "football",
                "homeTeam": match["awayTeam"]["id"],
                "awayTeam": home.upper(),
                "startTime": "2026-12-08T19:45:00+01:00",
                "competition": match["competition"]["id"],
            },
            headers=auth(api_key),
        )
        assert again.status_code == 201, again.text
        other = again.json()["data"]
        assert other["homeTeam"]["id"] == match["awayTeam"]["id"]
        assert other["awayTeam"]["id"] == match["homeTeam"]["id"]
        assert other["startTime"] == "2026-12-08T18:45:00+00:00"

        fetched = await http.get(f"/api/matches/{match['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == {"data": match}


async def test_get_match_has_score_clock_and_breakdown(edge: EdgeNode, factory: Factory) -> None:
    match = await factory.match(status=MatchStatus.LIVE, home_score=2, away_score=1)
    async with httpx.AsyncClient(base_url=edge.url) as http:
        response = await http.get(f"/api/matches/{match['id']}")
    assert response.status_code == 200
    body = response.json()["data"]  # single objects are wrapped like lists
    assert (body["homeScore"], body["awayScore"], body["status"]) == (2, 1, "live")
    assert set(body["clock"]) == {
        "minute", "addedTime", "period",
        "running", "periodStartedAt", "periodStartMinute", "periodEndMinute",
    }  # fmt: skip
    assert set(body["breakdown"]) == {"halfTime", "regularTime", "extraTime", "penalties"}
    assert body["seq"] >= 1 and body["override"] is None
    assert response.headers["content-type"] == "application/json"


async def test_commentary_add_and_list_newest_first(
    edge: EdgeNode, factory: Factory, api_key: str
) -> None:
    match = await factory.match(status=MatchStatus.LIVE)
    async with httpx.AsyncClient(base_url=edge.url, headers=auth(api_key)) as http:
        first = await http.post(
            f"/api/matches/{match['id']}/commentary",
            json={"minute": 12, "type": "yellow", "message": "Booked", "actor": "A. Player"},
        )
        assert first.status_code == 201, first.text
        # the original API's field name, a team by id, and metadata
        second = await http.post(
            f"/api/matches/{match['id']}/commentary",
            json={
                "minute": 30,
                "eventType": "goal",
                "message": "What a strike",
                "team": match["awayTeam"]["id"],
                "metadata": {"assist": "B. Player"},
            },
        )
        assert second.status_code == 201, second.text
        third = await http.post(
            f"/api/matches/{match['id']}/commentary",
            json={"minute": 45, "addedTime": 2, "type": "text", "message": "Half time soon"},
        )
        listed = await http.get(f"/api/matches/{match['id']}/commentary")
        page = await http.get(f"/api/matches/{match['id']}/commentary?limit=2")
        rest = await http.get(
            f"/api/matches/{match['id']}/commentary?limit=2&before={page.json()['nextBefore']}"
        )
    goal = second.json()["data"]
    assert goal["type"] == "goal" and goal["side"] == "away"
    assert goal["team"] == {"id": match["awayTeam"]["id"], "name": match["awayTeam"]["name"]}
    assert goal["metadata"] == {"assist": "B. Player"} and goal["source"] == "api"
    first_event, third_event = first.json()["data"], third.json()["data"]
    assert first_event["actor"] == "A. Player" and first_event["side"] is None
    assert third_event["addedTime"] == 2
    events = listed.json()["data"]
    assert [e["id"] for e in events] == [third_event["id"], goal["id"], first_event["id"]]
    assert [e["seq"] for e in events] == sorted((e["seq"] for e in events), reverse=True)
    assert [e["id"] for e in page.json()["data"] + rest.json()["data"]] == [e["id"] for e in events]
    assert rest.json()["nextBefore"] is None


async def test_added_commentary_bumps_the_match_seq_at_once(
    edge: EdgeNode, factory: Factory, api_key: str
) -> None:
    match = await factory.match(status=MatchStatus.LIVE)
    async with httpx.AsyncClient(base_url=edge.url) as http:
        before = (await http.get(f"/api/matches/{match['id']}")).json()["data"]["seq"]
        added = await http.post(
            f"/api/matches/{match['id']}/commentary",
            json={"minute": 5, "type": "text", "message": "Kick-off"},
            headers=auth(api_key),
        )
        after = (await http.get(f"/api/matches/{match['id']}")).json()["data"]["seq"]
    assert added.json()["data"]["seq"] == before + 1 == after


async def test_changes_since_replays_the_log_in_order(edge: EdgeNode, factory: Factory) -> None:
    match = await factory.match(status=MatchStatus.LIVE, home_score=1, away_score=0)
    await factory.event(match["id"], type=EventType.YELLOW, side="home", message="card")
    async with httpx.AsyncClient(base_url=edge.url) as http:
        everything = (await http.get(f"/api/matches/{match['id']}/changes")).json()
        after_first = (await http.get(f"/api/matches/{match['id']}/changes?since=1")).json()
        paged = (await http.get(f"/api/matches/{match['id']}/changes?since=0&limit=1")).json()
        missing = await http.get("/api/matches/999999999/changes?since=0")
    seqs = [m["seq"] for m in everything["data"]]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 3
    assert {m["type"] for m in everything["data"]} >= {"match:status", "commentary:new"}
    first = everything["data"][0]
    assert set(first) == {"type", "matchId", "seq", "data", "ts"}
    assert first["matchId"] == match["id"]
    assert datetime.fromisoformat(first["ts"]).tzinfo is not None
    assert [m["seq"] for m in after_first["data"]] == seqs[1:]
    assert [m["seq"] for m in paged["data"]] == [1] and paged["nextSince"] == 1
    assert everything["nextSince"] is None
    assert missing.status_code == 404


async def test_list_filters_by_status_competition_date_and_team(
    edge: EdgeNode, factory: Factory
) -> None:
    comp = await factory.competition(unique("League"))
    other_comp = await factory.competition(unique("League"))
    team = await factory.team(unique("Filter FC"))
    day = datetime(2031, 5, 17, tzinfo=UTC)
    live = await factory.match(
        competition=comp, home=team, start_time=day + timedelta(hours=18), status=MatchStatus.LIVE
    )
    later = await factory.match(competition=comp, start_time=day + timedelta(days=1, hours=1))
    finished = await factory.match(
        competition=comp, away=team, start_time=day + timedelta(hours=12),
        status=MatchStatus.FINISHED,
    )  # fmt: skip
    elsewhere = await factory.match(competition=other_comp, home=team, start_time=day)

    async def ids(query: str) -> list[int]:
        response = await http.get(f"/api/matches?{query}")
        assert response.status_code == 200, response.text
        return [m["id"] for m in response.json()["data"]]

    async with httpx.AsyncClient(base_url=edge.url) as http:
        assert await ids(f"competition={comp}") == [finished["id"], live["id"], later["id"]]
        assert await ids(f"competition={comp}&status=live") == [live["id"]]
        assert await ids(f"competition={comp}&status=live,finished") == [
            finished["id"],
            live["id"],
        ]
        assert await ids(f"competition={comp}&date=2031-05-17") == [finished["id"], live["id"]]
        assert await ids(f"team={team}") == [elsewhere["id"], finished["id"], live["id"]]
        assert await ids(f"team={team}&competition={other_comp}") == [elsewhere["id"]]
        assert await ids("date=1999-01-01") == []


async def test_reference_data(edge: EdgeNode, factory: Factory) -> None:
    comp_name = unique("Reference Cup")
    comp = await factory.competition(comp_name, country="Iceland")
    home, away = await factory.team(unique("Ref A")), await factory.team(unique("Ref B"))
    await factory.match(competition=comp, home=home, away=away)
    async with httpx.AsyncClient(base_url=edge.url) as http:
        competitions = (await http.get("/api/competitions")).json()["data"]
        teams = (await http.get(f"/api/teams?competition={comp}")).json()["data"]
        all_teams = (await http.get("/api/teams")).json()["data"]
    assert {
        "id": comp,
        "sport": "football",
        "name": comp_name,
        "country": "Iceland",
    } in competitions
    assert sorted(t["id"] for t in teams) == sorted([home, away])
    assert {home, away} <= {t["id"] for t in all_teams}
    assert set(teams[0]) == {"id", "sport", "name", "shortName", "tla"}


async def test_openapi_document_lists_every_route(edge: EdgeNode) -> None:
    async with httpx.AsyncClient(base_url=edge.url) as http:
        doc = (await http.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) == {
        "/health",
        "/metrics",
        "/openapi.json",
        "/api/matches",
        "/api/matches/{id}",
        "/api/matches/{id}/override",
        "/api/matches/{id}/commentary",
        "/api/matches/{id}/changes",
        "/api/competitions",
        "/api/teams",
        "/api/competitions/{id}/standings",
        "/ws",
        "/sse",
    }
    assert set(doc["paths"]["/api/matches"]) == {"get", "post"}
    assert set(doc["paths"]["/api/matches/{id}"]) == {"get", "patch"}
    assert set(doc["paths"]["/api/matches/{id}/override"]) == {"delete"}


async def test_metrics_count_requests_by_route_and_status(edge: EdgeNode) -> None:
    async with httpx.AsyncClient(base_url=edge.url) as http:
        await http.get("/api/matches/999999999")
        await http.get("/no/such/route")
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    assert "# TYPE livescore_http_requests_total counter" in text
    assert (
        'livescore_http_requests_total{route="/api/matches/{match_id}",method="GET",status="404"}'
        in text
    )
    assert 'livescore_http_requests_total{route="unmatched",method="GET",status="404"}' in text
    assert "# TYPE livescore_http_request_duration_seconds histogram" in text
    assert 'livescore_http_request_duration_seconds_bucket{route="/api/matches/{match_id}"' in text
    assert 'le="+Inf"}' in text
