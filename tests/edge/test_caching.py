"""Caching validators: ETag on every read, 304 on If-None-Match, Cache-Control no-cache."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from livescore.model import MatchPatch, MatchStatus
from store.db import Conn
from store.writes import apply_change
from tests.edge.conftest import EdgeNode, EdgeServers, publish
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


async def test_reference_lists_are_cached_and_refreshed_by_any_change(
    edge: EdgeNode, factory: Factory, conn: Conn, redis: aioredis.Redis
) -> None:
    async with httpx.AsyncClient(base_url=edge.url) as http:
        first = await http.get("/api/competitions")
        name = f"Cup {secrets.token_hex(3)}"
        comp = await factory.competition(name)
        match = await factory.match(competition=comp)
        changes = await apply_change(
            conn, match["id"], MatchPatch(source="t", home_score=1, away_score=0)
        )
        await publish(redis, edge.keys, changes)

        async def listed() -> bool:
            names = [c["name"] for c in (await http.get("/api/competitions")).json()["data"]]
            teams = (await http.get(f"/api/teams?competition={comp}")).json()["data"]
            return name in names and len(teams) == 2

        await eventually(listed, 2.0, "the new competition and its teams")
        assert first.status_code == 200
