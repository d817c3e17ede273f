"""Caching validators: ETag on every read, 304 on If-None-Match, Cache-Control no-cache."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest

from livescore.model import MatchPatch, MatchStatus
from store.db import Conn
from store.writes import apply_change
from tests.edge.conftest import EdgeNode
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
