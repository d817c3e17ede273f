"""Cross-node fan-out: two real edge nodes, the real relay, clients on both.

Every client sees every change of the matches it follows exactly once, in
seq order, whichever node it is on and whichever process made the change
(the test process through ``apply_change``, or a node through its REST API).
"""

from __future__ import annotations

import asyncio
import secrets

import httpx

from pipeline.relay import Relay
from store.apikeys import create_key
from store.db import Conn, Pool
from tests.factories import Factory
from tests.waiting import eventually
from tests.ws.conftest import EdgeFactory
from tests.ws.helpers import WsClient, current_seq, metric, play, ws_url


async def test_two_nodes_every_change_once_in_order(
    edges: EdgeFactory, relay: Relay, factory: Factory, pool: Pool
) -> None:
    a, b = edges(2)
    first, second = await factory.match(), await factory.match()
    ids = [first["id"], second["id"]]
    clients = [WsClient(ws_url(node)) for node in (a, b, a, b, a, b)]
    for client in clients:
        await client.__aenter__()
    try:
        for n, client in enumerate(clients):
            follows = ids if n < 4 else ids[n % 2 : n % 2 + 1]
            for match_id in follows:
                reply = await client.request({"action": "subscribe", "matchId": match_id})
                assert reply["type"] == "subscribed"

        async def writer(match_id: int) -> None:
            async with pool.connection() as conn:
                for step in range(1, 41):
                    await play(conn, match_id, step)
                    await asyncio.sleep(0.005)

        await asyncio.gather(*(writer(match_id) for match_id in ids))
        async with pool.connection() as conn:
            final = {match_id: await current_seq(conn, match_id) for match_id in ids}
        assert all(seq > 40 for seq in final.values())

        def done() -> bool:
            return all(
                c.position(m) == final[m] for c in clients for m in ids if c.position(m) is not None
            )

        await eventually(done, 20, "every client to reach the final seq")
        for n, client in enumerate(clients):
            for match_id in ids:
                if client.position(match_id) is None:
                    continue
                assert client.seqs(match_id) == list(range(1, final[match_id] + 1)), (n, match_id)
    finally:
        for client in clients:
            await client.aclose()
    # each node received each change once from Redis and wrote it to its own clients only
    # node a holds clients 0 and 2 (both matches) and 4 (the first match)
    expected = 3 * final[ids[0]] + 2 * final[ids[1]]
    assert metric(a, "livescore_ws_messages_sent_total") == expected


async def test_a_change_made_through_a_node_reaches_both_nodes_once(
    edges: EdgeFactory, relay: Relay, factory: Factory, conn: Conn
) -> None:
    a, b = edges(2)
    match = await factory.match()
    key = (await create_key(conn, f"ws-{secrets.token_hex(4)}")).plain
    async with WsClient(ws_url(a)) as on_a, WsClient(ws_url(b)) as on_b:
        for client in (on_a, on_b):
            await client.request({"action": "subscribe", "matchId": match["id"]})
        async with httpx.AsyncClient(base_url=a.url) as http:
            for minute in (10, 20, 30):
                response = await http.post(
                    f"/api/matches/{match['id']}/commentary",
                    json={"minute": minute, "type": "text", "message": f"minute {minute}"},
                    headers={"Authorization": f"Bearer {key}"},
                )
                assert response.status_code == 201, response.text
        for client in (on_a, on_b):
            await eventually(lambda c=client: c.position(match["id"]) == 3, 10, "three changes")
            assert client.seqs(match["id"]) == [1, 2, 3]
            messages = [
                f["data"]["message"] for f in client.frames if f["type"] == "commentary:new"
            ]
            assert messages == ["minute 10", "minute 20", "minute 30"]
