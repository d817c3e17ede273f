"""Caching against real edge nodes: ETag on every read, 304 on If-None-Match,
Cache-Control no-cache, and what makes each cached read fresh again."""

from __future__ import annotations

import secrets
import time
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from edge.cache import REFERENCE_TTL
from livescore.model import MatchPatch, MatchStatus
from store.db import Conn
from store.writes import apply_change
from tests.edge.conftest import EdgeNode, EdgeServers, auth, publish
from tests.edge.test_metrics import node_total, scrape
from tests.factories import Factory
from tests.waiting import eventually

pytestmark = pytest.mark.slow


async def test_every_read_has_an_etag_and_answers_304(edge: EdgeNode, factory: Factory) -> None:
    comp = await factory.competition(f"Etag {secrets.token_hex(3)}")
    match = await factory.match(competition=comp, status=MatchStatus.LIVE)
    await factory.event(match["id"])
    paths = [
        f"/api/matches/{match['id']}",
        f"/api/matches?competition={comp}",
        f"/api/matches/{match['id']}/commentary",
        f"/api/matches/{match['id']}/changes?since=0",
        "/api/competitions",
        f"/api/teams?competition={comp}",
    ]
    async with httpx.AsyncClient(base_url=edge.url) as http:
        for path in paths:
            first = await http.get(path)
            assert first.status_code == 200, path
            etag = first.headers["etag"]
            assert etag.startswith('"') and etag.endswith('"'), path
            assert first.headers["cache-control"] == "no-cache", path
            again = await http.get(path, headers={"If-None-Match": etag})
            assert again.status_code == 304, path
            assert again.content == b"" and again.headers["etag"] == etag, path
            other = await http.get(path, headers={"If-None-Match": '"something-else"'})
            assert other.status_code == 200 and other.content == first.content, path


async def test_if_none_match_lists_weak_tags_and_star(edge: EdgeNode, factory: Factory) -> None:
    match = await factory.match()
    path = f"/api/matches/{match['id']}"
    async with httpx.AsyncClient(base_url=edge.url) as http:
        etag = (await http.get(path)).headers["etag"]
        listed = await http.get(path, headers={"If-None-Match": f'"nope", W/{etag}'})
        star = await http.get(path, headers={"If-None-Match": "*"})
    assert listed.status_code == 304 and star.status_code == 304


async def test_a_change_changes_the_etag_at_once_on_the_writing_node(
    edge: EdgeNode, factory: Factory, conn: Conn, api_key: str
) -> None:
    match = await factory.match(status=MatchStatus.LIVE)
    path = f"/api/matches/{match['id']}"
    async with httpx.AsyncClient(base_url=edge.url) as http:
        first = await http.get(path)
        await http.post(
            f"{path}/commentary",
            json={"minute": 3, "type": "text", "message": "early chance"},
            headers={"Authorization": f"Bearer {api_key}"},
        )
        second = await http.get(path, headers={"If-None-Match": first.headers["etag"]})
    assert second.status_code == 200
    assert second.json()["data"]["seq"] == first.json()["data"]["seq"] + 1
    assert second.headers["etag"] != first.headers["etag"]


async def test_unpublished_writes_show_within_the_cache_ttl(
    edge: EdgeNode, factory: Factory, conn: Conn
) -> None:
    """With no relay running, the TTL bounds staleness (the stale flag publishes nothing)."""
    match = await factory.match(status=MatchStatus.LIVE)
    path = f"/api/matches/{match['id']}"
    async with httpx.AsyncClient(base_url=edge.url) as http:
        assert (await http.get(path)).json()["data"]["homeScore"] == 0
        await apply_change(conn, match["id"], MatchPatch(source="t", home_score=1, away_score=0))
        await conn.execute("UPDATE matches SET stale = true WHERE id = %s", (match["id"],))

        async def shown() -> dict[str, Any] | None:
            body: dict[str, Any] = (await http.get(path)).json()["data"]
            return body if body["homeScore"] == 1 else None

        # nothing is published, so only the 2 s TTL ends the old entry (the TTL itself is
        # pinned on a fake clock in test_bus_and_cache); 1 s of slack for a loaded machine
        body = await eventually(shown, within=2.0 + 1.0, what="the write past the TTL")
    assert body["stale"] is True


async def test_commentary_and_change_pages_show_our_own_write_at_once(
    edge: EdgeNode, factory: Factory, api_key: str
) -> None:
    """Pages are cached, but the writing node never answers one from before its write."""
    match = await factory.match(status=MatchStatus.LIVE)
    base = f"/api/matches/{match['id']}"
    async with httpx.AsyncClient(base_url=edge.url) as http:
        for minute in (5, 6, 7):
            commentary = (await http.get(f"{base}/commentary?limit=2")).json()["data"]
            changes = (await http.get(f"{base}/changes?since=0")).json()["data"]
            posted = await http.post(
                f"{base}/commentary",
                json={"minute": minute, "type": "text", "message": f"minute {minute}"},
                headers={"Authorization": f"Bearer {api_key}"},
            )
            assert posted.status_code == 201, posted.text
            after = (await http.get(f"{base}/commentary?limit=2")).json()["data"]
            assert after[0]["message"] == f"minute {minute}"
            assert after[1:] == commentary[:1]
            log = (await http.get(f"{base}/changes?since=0")).json()["data"]
            assert len(log) == len(changes) + 1 and log[-1]["type"] == "commentary:new"


async def test_a_published_change_refreshes_cached_pages_on_every_node(
    edge_server: EdgeServers, factory: Factory, conn: Conn, redis: aioredis.Redis
) -> None:
    nodes = edge_server.start(2)
    match = await factory.match(status=MatchStatus.LIVE)
    paths = [
        f"/api/matches/{match['id']}/commentary",
        f"/api/matches/{match['id']}/changes?since=0",
    ]
    async with httpx.AsyncClient() as http:

        async def pages(node: EdgeNode) -> list[Any]:
            return [(await http.get(node.url + path)).json()["data"] for path in paths]

        warm = [await pages(node) for node in nodes]  # every page cached on every node
        assert warm[0] == warm[1] and warm[0][0] == []
        changes = await factory.event(match["id"], message="a chance", minute=12)
        # committed, not published: the cached pages are still served...
        assert [await pages(node) for node in nodes] == warm
        await publish(redis, nodes[0].keys, changes)

        async def refreshed() -> bool:
            for node in nodes:
                events, log = await pages(node)
                if [e["message"] for e in events] != ["a chance"]:
                    return False
                if len(log) != len(warm[0][1]) + len(changes):
                    return False
            return True

        # ...and once published, every node serves the new pages within the bus's delay
        await eventually(refreshed, 1.0, "every node to serve the new pages")


async def reference_reads(node: EdgeNode) -> float:
    """PostgreSQL reads the node has made for its reference lists (its metric)."""
    return node_total(await scrape(node), "livescore_cache_loads_total", 'cache="reference"')


async def test_a_score_change_does_not_reload_the_reference_lists(
    edge: EdgeNode, factory: Factory, conn: Conn, redis: aioredis.Redis
) -> None:
    """Reference lists go stale by their TTL (or a match created on this node), never by
    a change of a match: through 20 published score changes, each seen by the node before
    the lists are asked for again, each list is read at most once per REFERENCE_TTL
    (when any change made them stale, each change cost a read of each)."""
    comp = await factory.competition(f"Steady {secrets.token_hex(3)}")
    match = await factory.match(competition=comp, status=MatchStatus.LIVE)
    lists = ["/api/competitions", f"/api/teams?competition={comp}"]
    async with httpx.AsyncClient(base_url=edge.url) as http:
        await http.get(f"/api/matches/{match['id']}")  # cached: the bus patches it
        for path in lists:
            assert (await http.get(path)).status_code == 200
        before = await reference_reads(edge)
        began = time.monotonic()
        for goal in range(1, 21):
            changes = await apply_change(
                conn, match["id"], MatchPatch(source="t", home_score=goal, away_score=0)
            )
            await publish(redis, edge.keys, changes)

            async def heard(goal: int = goal) -> bool:
                body = (await http.get(f"/api/matches/{match['id']}")).json()["data"]
                return bool(body["homeScore"] == goal)

            await eventually(heard, 5.0, "the node to serve the published change")
            for path in lists:
                assert (await http.get(path)).status_code == 200
        elapsed = time.monotonic() - began
        reads = await reference_reads(edge) - before
    assert reads <= len(lists) * (elapsed // REFERENCE_TTL + 1), (reads, elapsed)


async def test_a_competition_created_elsewhere_shows_within_the_reference_ttl(
    edge: EdgeNode, factory: Factory
) -> None:
    """Creating a match (and its competition and teams) elsewhere publishes nothing: the
    reference TTL is the bound on how late the new rows show."""
    async with httpx.AsyncClient(base_url=edge.url) as http:
        assert (await http.get("/api/competitions")).status_code == 200  # cached now
        name = f"Cup {secrets.token_hex(3)}"
        comp = await factory.competition(name)  # as the pipeline does: straight to PostgreSQL
        await factory.match(competition=comp)

        async def listed() -> bool:
            names = [c["name"] for c in (await http.get("/api/competitions")).json()["data"]]
            teams = (await http.get(f"/api/teams?competition={comp}")).json()["data"]
            return name in names and len(teams) == 2

        # 1 s of slack for a loaded machine, as for the other TTLs
        await eventually(listed, REFERENCE_TTL + 1.0, "the new competition and its teams")


async def test_a_match_created_on_this_node_shows_its_competition_and_teams_at_once(
    edge: EdgeNode, api_key: str
) -> None:
    cup = f"Cup {secrets.token_hex(3)}"
    body = {
        "sport": "football",
        "homeTeam": f"Home {secrets.token_hex(3)}",
        "awayTeam": f"Away {secrets.token_hex(3)}",
        "competition": cup,
        "startTime": "2026-12-01T19:45:00Z",
    }
    async with httpx.AsyncClient(base_url=edge.url) as http:
        assert (await http.get("/api/competitions")).status_code == 200  # cached now
        assert (await http.get("/api/teams")).status_code == 200
        created = await http.post("/api/matches", json=body, headers=auth(api_key))
        assert created.status_code == 201, created.text
        competitions = (await http.get("/api/competitions")).json()["data"]
        teams = (await http.get("/api/teams")).json()["data"]
    assert cup in [c["name"] for c in competitions]
    assert {body["homeTeam"], body["awayTeam"]} <= {t["name"] for t in teams}
