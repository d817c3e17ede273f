"""``GET /sse`` against real edge nodes: the same changes as ``/ws``, in order and
exactly once, resumed with ``Last-Event-ID`` (what EventSource sends) or
``?since=``, the same "too old to replay" answer, the same limits."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
import redis.asyncio as aioredis

from livescore.model import MatchPatch, MatchStatus
from store.db import Conn
from store.writes import Change, apply_change
from tests.edge.conftest import EdgeNode, EdgeServers, publish
from tests.factories import Factory
from tests.waiting import eventually, eventually_blocking

pytestmark = pytest.mark.slow


@dataclass
class Event:
    id: str | None
    event: str
    data: dict[str, Any]


class Stream:
    """The events of one ``/sse`` response, parsed as EventSource parses them."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()
        self.last_id: str | None = None
        self.comments = 0

    async def next(self, within: float = 5.0) -> Event:
        return await asyncio.wait_for(self._next(), within)

    async def _next(self) -> Event:
        fields: dict[str, str] = {}
        async for line in self.lines:
            if line == "":
                if "data" in fields:
                    if "id" in fields:
                        self.last_id = fields["id"]
                    return Event(fields.get("id"), fields["event"], orjson.loads(fields["data"]))
                continue
            if line.startswith(":"):
                self.comments += 1
                continue
            name, _, value = line.partition(": ")
            fields[name] = value
        raise EOFError("the stream ended")

    async def take(self, n: int, within: float = 5.0) -> list[Event]:
        return [await self.next(within) for _ in range(n)]


@asynccontextmanager
async def stream(
    node: EdgeNode, query: str, headers: dict[str, str] | None = None
) -> AsyncIterator[Stream]:
    async with (
        httpx.AsyncClient(base_url=node.url, timeout=10) as http,
        http.stream("GET", f"/sse?{query}", headers=headers or {}) as response,
    ):
        assert response.status_code == 200, (await response.aread()).decode()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield Stream(response)


async def goal(conn: Conn, match_id: int, home: int) -> list[Change]:
    return await apply_change(conn, match_id, MatchPatch(source="t", home_score=home, away_score=0))


@pytest.fixture
def node(edge_server: EdgeServers) -> EdgeNode:
    return edge_server.start(1)[0]


async def test_a_stream_gets_the_snapshot_then_every_change_in_order(
    node: EdgeNode, factory: Factory, conn: Conn, redis: aioredis.Redis
) -> None:
    match = await factory.match(status=MatchStatus.LIVE)
    m = match["id"]
    async with stream(node, f"matchId={m}") as events:
        first = await events.next()
        assert first.event == "subscribed" and first.data["snapshot"]["id"] == m
        assert first.id == f"{m}:{first.data['seq']}"
        start = first.data["seq"]
        for home in (1, 2, 3):
            await publish(redis, node.keys, await goal(conn, m, home))
        got = await events.take(3)
    assert [e.event for e in got] == ["score:update"] * 3
    assert [e.data["seq"] for e in got] == [start + 1, start + 2, start + 3]
    assert [e.id for e in got] == [f"{m}:{start + n}" for n in (1, 2, 3)]
    assert got[-1].data["data"]["homeScore"] == 3  # the JSON a WebSocket client gets


async def test_last_event_id_resumes_every_match_exactly_once(
    node: EdgeNode, factory: Factory, conn: Conn, redis: aioredis.Redis
) -> None:
    a, b = (await factory.match(status=MatchStatus.LIVE))["id"], (await factory.match())["id"]
    async with stream(node, f"matchId={a},{b}") as events:
        await events.take(2)  # both snapshots
        await publish(redis, node.keys, await goal(conn, a, 1))
        await events.next()
        last = events.last_id
    assert last is not None and last.startswith(f"{a}:") and f",{b}:" in last
    missed = await goal(conn, a, 2) + await goal(conn, b, 1) + await goal(conn, a, 3)
    async with stream(node, f"matchId={a},{b}", {"Last-Event-ID": last}) as events:
        got = await events.take(5)  # each match: its subscribed frame, then what it missed
        resumed = [e for e in got if e.event == "subscribed"]
        replayed = [e for e in got if e.event != "subscribed"]
        assert [e.data["matchId"] for e in resumed] == [a, b]
        assert all(e.data["resumed"] for e in resumed)
        await publish(redis, node.keys, await goal(conn, b, 2))
        live = await events.next()
    # each match's missed changes in order, the matches one after the other
    assert [(e.data["matchId"], e.data["seq"]) for e in replayed] == [
        (c.match_id, c.seq) for c in missed if c.match_id == a
    ] + [(c.match_id, c.seq) for c in missed if c.match_id == b]
    assert (live.data["matchId"], live.data["data"]["homeScore"]) == (b, 2)
    positions = dict(part.split(":") for part in (live.id or "").split(","))
    assert positions == {str(a): str(missed[-1].seq), str(b): str(live.data["seq"])}
    assert live.data["seq"] == missed[1].seq + 1


async def test_since_in_the_query_resumes_one_match(
    node: EdgeNode, factory: Factory, conn: Conn
) -> None:
    m = (await factory.match(status=MatchStatus.LIVE))["id"]
    changes = [c for home in (1, 2, 3) for c in await goal(conn, m, home)]
    since = changes[0].seq
    async with stream(node, f"matchId={m}&since={since}") as events:
        first, *replayed = await events.take(3)
    assert first.event == "subscribed" and first.data == {
        "type": "subscribed", "matchId": m, "seq": since, "resumed": True,
    }  # fmt: skip
    assert [e.data["seq"] for e in replayed] == [c.seq for c in changes[1:]]


async def test_a_position_too_old_to_replay_gets_the_error_then_a_fresh_snapshot(
    node: EdgeNode, factory: Factory, conn: Conn
) -> None:
    m = (await factory.match(status=MatchStatus.LIVE))["id"]
    changes = [c for home in (1, 2, 3) for c in await goal(conn, m, home)]
    await conn.execute("DELETE FROM match_changes WHERE match_id = %s AND seq <= %s", (m, 2))
    async with stream(node, f"matchId={m}", {"Last-Event-ID": f"{m}:0"}) as events:
        error, fresh = await events.take(2)
    assert error.event == "error" and error.data["code"] == "resume_unavailable"
    assert error.id is None  # an error does not move the stream's position
    assert fresh.event == "subscribed" and fresh.data["seq"] == changes[-1].seq
    assert fresh.data["snapshot"]["homeScore"] == 3


async def test_a_competition_stream_follows_its_matches(
    node: EdgeNode, factory: Factory, conn: Conn, redis: aioredis.Redis
) -> None:
    comp = await factory.competition("SSE League")
    match = await factory.match(competition=comp, status=MatchStatus.LIVE)
    async with stream(node, f"competitionId={comp}") as events:
        listed, table, joined = await events.take(3)
        assert listed.data["matchIds"] == [match["id"]] and listed.id is None
        # the competition's current table at once, without a stream position
        assert table.event == "standings:update" and table.id is None
        assert joined.data["matchId"] == match["id"]
        await publish(redis, node.keys, await goal(conn, match["id"], 1))
        change = await events.next()
    assert change.data["matchId"] == match["id"] and change.data["data"]["homeScore"] == 1


@pytest.mark.parametrize(
    ("query", "headers", "status", "code"),
    [
        ("", {}, 400, "invalid_parameter"),
        ("matchId=abc", {}, 400, "invalid_parameter"),
        ("matchId=1&since=x", {}, 400, "invalid_parameter"),
        ("matchId=1,2&since=5", {}, 400, "invalid_parameter"),
        ("matchId=1", {"Last-Event-ID": "1-5"}, 400, "invalid_parameter"),
        ("matchId=1&other=2", {}, 400, "invalid_parameter"),
        ("matchId=987654321", {}, 404, "not_found"),
        ("competitionId=987654321", {}, 404, "not_found"),
    ],
)
async def test_bad_streams_are_plain_http_errors(
    node: EdgeNode, query: str, headers: dict[str, str], status: int, code: str
) -> None:
    async with httpx.AsyncClient(base_url=node.url, timeout=10) as http:
        response = await http.get(f"/sse?{query}", headers=headers)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert response.headers["access-control-allow-origin"] == "*"


async def test_a_reader_that_stops_is_dropped_and_others_go_on(
    edge_server: EdgeServers, factory: Factory, conn: Conn, redis: aioredis.Redis
) -> None:
    (node,) = edge_server.start(1, LIVESCORE_WS_QUEUE="8")
    m = (await factory.match(status=MatchStatus.LIVE))["id"]
    stalled = socket.create_connection(("127.0.0.1", node.port))
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.sendall(f"GET /sse?matchId={m} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    try:
        async with stream(node, f"matchId={m}") as events:
            await events.next()
            dropped, written = False, 0
            while not dropped and written < 300:
                written += 1
                changes = await factory.event(m, message="x" * 1900, minute=written % 90)
                await publish(redis, node.keys, changes)
                assert (await events.next()).data["seq"] == changes[-1].seq
                dropped = "slow consumer" in node.log_text()
            assert dropped, "the stalled stream was never dropped"
    finally:
        stalled.close()


async def test_streams_share_the_per_address_socket_cap_with_websockets(
    edge_server: EdgeServers, factory: Factory
) -> None:
    (node,) = edge_server.start(1, LIVESCORE_WS_MAX_PER_ADDRESS="1")
    m = (await factory.match())["id"]
    async with stream(node, f"matchId={m}") as events:
        await events.next()
        async with httpx.AsyncClient(base_url=node.url, timeout=10) as http:
            crowded = await http.get(f"/sse?matchId={m}")
        assert crowded.status_code == 429
        assert crowded.json()["error"]["code"] == "too_many_connections"

    def freed() -> bool:
        with (
            httpx.Client(base_url=node.url, timeout=10) as http,
            http.stream("GET", f"/sse?matchId={m}") as response,
        ):
            return response.status_code == 200

    eventually_blocking(freed, 5, "the slot to be given back")


async def test_closing_a_stream_leaves_no_subscription_behind(
    node: EdgeNode, factory: Factory
) -> None:
    m = (await factory.match())["id"]
    for _ in range(3):
        async with stream(node, f"matchId={m}") as events:
            await events.next()

    async def forgotten() -> bool:
        async with httpx.AsyncClient(base_url=node.url) as http:
            text = (await http.get("/metrics")).text
        line = next(x for x in text.splitlines() if x.startswith("livescore_ws_connections "))
        return float(line.split()[-1]) == 0

    await eventually(forgotten, 5, "every stream to be forgotten")


async def test_a_quiet_stream_gets_heartbeat_comments(
    edge_server: EdgeServers, factory: Factory
) -> None:
    (node,) = edge_server.start(1, LIVESCORE_SSE_HEARTBEAT="0.2")
    m = (await factory.match())["id"]
    async with stream(node, f"matchId={m}") as events:
        await events.next()
        with pytest.raises(TimeoutError):
            await events.next(within=1.0)  # nothing happens: only comments arrive
        assert events.comments >= 3
