"""Cursor pagination of GET /api/matches: opaque, validated, and stable while
other writers insert (no row skipped or repeated)."""

from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from edge.validation import decode_cursor, encode_cursor
from store.db import Pool
from tests.edge.conftest import EdgeNode
from tests.factories import Factory
from tests.waiting import eventually

pytestmark = pytest.mark.slow

BASE = datetime(2032, 3, 1, 12, tzinfo=UTC)


async def page_through(
    http: httpx.AsyncClient,
    query: str,
    *,
    between: Callable[[], Awaitable[object]] | None = None,
) -> list[dict[str, Any]]:
    """Every page of ``query``, awaiting ``between()`` before each next page."""
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        url = f"/api/matches?{query}" + (f"&cursor={cursor}" if cursor else "")
        response = await http.get(url)
        assert response.status_code == 200, response.text
        body = response.json()
        seen += body["data"]
        cursor = body["nextCursor"]
        if cursor is None:
            return seen
        if between is not None:
            await between()


def keyset(match: dict[str, Any]) -> tuple[datetime, int]:
    return datetime.fromisoformat(match["startTime"]), match["id"]


async def test_pages_cover_everything_once_in_order(edge: EdgeNode, factory: Factory) -> None:
    comp = await factory.competition(f"Paged {secrets.token_hex(3)}")
    made = [
        await factory.match(competition=comp, start_time=BASE + timedelta(minutes=15 * (i % 5)))
        for i in range(23)
    ]  # many share a kickoff: the id breaks the tie
    async with httpx.AsyncClient(base_url=edge.url) as http:
        seen = await page_through(http, f"competition={comp}&limit=5")
    assert sorted(m["id"] for m in seen) == sorted(m["id"] for m in made)
    assert [keyset(m) for m in seen] == sorted(keyset(m) for m in seen)


async def test_paging_is_stable_while_another_task_inserts(
    edge: EdgeNode, factory: Factory, pool: Pool
) -> None:
    comp = await factory.competition(f"Busy {secrets.token_hex(3)}")
    rng = random.Random(5)
    before = [
        await factory.match(
            competition=comp, start_time=BASE + timedelta(minutes=rng.randrange(600))
        )
        for _ in range(40)
    ]
    stop = asyncio.Event()
    inserted: list[int] = []

    async def insert_meanwhile() -> None:
        async with pool.connection() as conn:
            writer = Factory(conn)
            while not stop.is_set():
                match = await writer.match(
                    competition=comp, start_time=BASE + timedelta(minutes=rng.randrange(600))
                )
                inserted.append(match["id"])
                await asyncio.sleep(0.005)

    async def more_inserted() -> None:
        """Between two pages, until the inserter has made at least one more row:
        every page boundary races an insert, however slowly either side runs."""
        so_far = len(inserted)
        await eventually(lambda: len(inserted) > so_far, 30, "the inserter's next row")

    inserter = asyncio.create_task(insert_meanwhile())
    try:
        async with httpx.AsyncClient(base_url=edge.url) as http:
            seen = await page_through(http, f"competition={comp}&limit=6", between=more_inserted)
    finally:
        stop.set()
        await inserter
    ids = [m["id"] for m in seen]
    assert len(inserted) >= 5, "the inserter should have raced the pages"
    assert len(ids) == len(set(ids)), "a row was repeated"
    assert {m["id"] for m in before} <= set(ids), "a row that existed all along was skipped"
    assert [keyset(m) for m in seen] == sorted(keyset(m) for m in seen)


async def test_next_cursor_is_null_on_the_last_page(edge: EdgeNode, factory: Factory) -> None:
    comp = await factory.competition(f"Short {secrets.token_hex(3)}")
    await factory.match(competition=comp)
    async with httpx.AsyncClient(base_url=edge.url) as http:
        body = (await http.get(f"/api/matches?competition={comp}&limit=1")).json()
        empty = (await http.get(f"/api/matches?competition={comp}&limit=200")).json()
    assert len(body["data"]) == 1 and body["nextCursor"] is None
    assert empty["nextCursor"] is None


def test_cursor_round_trip() -> None:
    when = datetime(2030, 1, 2, 3, 4, 5, 600_000, tzinfo=UTC)
    assert decode_cursor(encode_cursor(when, 42)) == (when, 42)


async def test_tampered_cursor_is_a_400(edge: EdgeNode, factory: Factory) -> None:
    comp = await factory.competition(f"Tamper {secrets.token_hex(3)}")
    for _ in range(3):
        await factory.match(competition=comp)
    async with httpx.AsyncClient(base_url=edge.url) as http:
        cursor = (await http.get(f"/api/matches?competition={comp}&limit=1")).json()["nextCursor"]
        flipped = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
        responses = [
            await http.get(f"/api/matches?competition={comp}&cursor={bad}")
            for bad in (flipped, cursor[:-3], "not-a-cursor", "x" * 300, cursor + "%00")
        ]
    for response in responses:
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "invalid_parameter"
