"""Resume with ``since`` after a client dies mid-match, on another node."""

from __future__ import annotations

import asyncio

from pipeline.relay import Relay
from store.db import Conn, Pool
from tests.factories import Factory
from tests.waiting import eventually
from tests.ws.conftest import EdgeFactory
from tests.ws.helpers import WsClient, current_seq, play, ws_url


async def test_killed_client_resumes_on_the_other_node_without_gap_or_duplicate(
    edges: EdgeFactory, relay: Relay, factory: Factory, pool: Pool
) -> None:
    a, b = edges(2)
    match = await factory.match()
    match_id = match["id"]
    stop_writing = asyncio.Event()

    async def writer() -> None:
        async with pool.connection() as conn:
            step = 0
            while not stop_writing.is_set():
                step += 1
                await play(conn, match_id, step)
                await asyncio.sleep(0.01)

    first = WsClient(ws_url(a))
    await first.__aenter__()
    await first.request({"action": "subscribe", "matchId": match_id})
    writing = asyncio.create_task(writer())
    await eventually(lambda: (first.position(match_id) or 0) >= 8, 10, "some changes")
    # the client dies: no close frame, the TCP connection just goes
    assert first.ws is not None
    first.ws.transport.abort()
    await first.aclose()
    seen = first.seqs(match_id)
    await asyncio.sleep(0.3)  # the match goes on without it
    async with WsClient(ws_url(b)) as second:
        since = seen[-1]
        reply = await second.request({"action": "subscribe", "matchId": match_id, "since": since})
        assert reply == {"type": "subscribed", "matchId": match_id, "seq": since, "resumed": True}
        await asyncio.sleep(0.3)  # the match goes on after the resume too
        stop_writing.set()
        await writing
        async with pool.connection() as conn:
            final = await current_seq(conn, match_id)
        await eventually(lambda: second.position(match_id) == final, 10, "the final seq")
        assert seen == list(range(1, seen[-1] + 1))
        assert seen + second.seqs(match_id) == list(range(1, final + 1))


async def test_resume_from_the_future_gets_a_fresh_snapshot(
    edges: EdgeFactory, factory: Factory, conn: Conn
) -> None:
    (node,) = edges(1)
    match = await factory.match(home_score=1, away_score=1)
    async with WsClient(ws_url(node)) as client:
        start = len(client.frames)
        await client.send({"action": "subscribe", "matchId": match["id"], "since": 99})
        snapshot = await client.wait_for(lambda f: f["type"] == "subscribed", start=start)
        error = client.frames[start]
        assert error["type"] == "error" and error["code"] == "resume_unavailable"
        assert (error["matchId"], error["since"]) == (match["id"], 99)
        assert snapshot["seq"] == 1 and snapshot["snapshot"]["homeScore"] == 1
