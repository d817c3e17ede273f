"""One client stops reading among many: it is warned, then closed with 4008;
the others get every change, on time."""

from __future__ import annotations

import asyncio

from edge import ws_protocol as wp
from pipeline.relay import Relay
from store.db import Conn
from tests.factories import Factory
from tests.waiting import eventually
from tests.ws.conftest import EdgeFactory
from tests.ws.helpers import RawClient, WsClient, current_seq, metric, play, ws_url

QUEUE = 16


async def test_a_stalled_client_is_dropped_and_the_others_are_unaffected(
    edges: EdgeFactory, relay: Relay, factory: Factory, conn: Conn
) -> None:
    (node,) = edges(1, LIVESCORE_WS_QUEUE=str(QUEUE))
    match = await factory.match()
    match_id = match["id"]
    stalled = RawClient(node.port, rcvbuf=4096)
    await asyncio.to_thread(stalled.handshake)
    await asyncio.to_thread(stalled.send, {"action": "subscribe", "matchId": match_id})
    readers = [WsClient(ws_url(node)) for _ in range(8)]
    try:
        for client in readers:
            await client.__aenter__()
            await client.request({"action": "subscribe", "matchId": match_id})
        for step in range(
            1, 121
        ):  # ~2 KB per change (twice: event and score): the stalled socket fills up fast
            await play(conn, match_id, step, message_size=1900)
        final = await current_seq(conn, match_id)
        await eventually(lambda: all(c.position(match_id) == final for c in readers), 20)
        for client in readers:
            assert client.seqs(match_id) == list(range(1, final + 1))
            assert not client.closed.is_set()
        assert metric(node, "livescore_ws_dropped_slow_total") == 1
        assert metric(node, "livescore_ws_connections") == len(readers)
        # the stalled client, reading at last, finds the warning and the close frame
        frames = await asyncio.to_thread(stalled.drain)
        texts = [f.data for f in frames if f.opcode.name == "TEXT"]
        assert any(b'"slow_consumer"' in t for t in texts)
        closes = [f for f in frames if f.opcode.name == "CLOSE"]
        assert closes and int.from_bytes(closes[0].data[:2], "big") == wp.CLOSE_SLOW
    finally:
        stalled.close()
        for client in readers:
            await client.aclose()
