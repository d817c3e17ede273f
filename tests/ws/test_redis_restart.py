"""Redis dies mid-stream and comes back: every client still ends with the
full, ordered seq sequence (the relay republishes what it could not publish;
the nodes fill whatever was published while they were not subscribed from
the change log)."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from livescore.keys import Keys
from store.db import Pool
from tests.factories import Factory
from tests.servers import PrivateRedis
from tests.waiting import eventually
from tests.ws.conftest import EdgeFactory, RelayFactory
from tests.ws.helpers import WsClient, current_seq, metric, play, ws_url


async def test_redis_restart_mid_stream_loses_nothing(
    edges: EdgeFactory,
    make_relay: RelayFactory,
    private_redis: PrivateRedis,
    keys: Keys,
    factory: Factory,
    pool: Pool,
) -> None:
    a, b = edges(2, REDIS_URL=private_redis.url)
    redis = aioredis.from_url(private_redis.url, socket_connect_timeout=1)
    await make_relay(redis, keys)
    first, second = await factory.match(), await factory.match()
    ids = [first["id"], second["id"]]
    clients = [WsClient(ws_url(node)) for node in (a, a, b, b)]
    stop_writing = asyncio.Event()

    async def writer(match_id: int) -> None:
        async with pool.connection() as conn:
            step = 0
            while not stop_writing.is_set():
                step += 1
                await play(conn, match_id, step)
                await asyncio.sleep(0.02)

    try:
        for client in clients:
            await client.__aenter__()
            for match_id in ids:
                await client.request({"action": "subscribe", "matchId": match_id})
        writers = [asyncio.create_task(writer(match_id)) for match_id in ids]
        await eventually(lambda: all((c.position(ids[0]) or 0) >= 10 for c in clients), 15)
        private_redis.kill()
        await asyncio.sleep(1.5)  # changes keep being committed meanwhile
        private_redis.start()
        await eventually(lambda: all((c.position(ids[0]) or 0) >= 60 for c in clients), 30)
        stop_writing.set()
        await asyncio.gather(*writers)
        async with pool.connection() as conn:
            final = {m: await current_seq(conn, m) for m in ids}
        await eventually(
            lambda: all(c.position(m) == final[m] for c in clients for m in ids), 30, "final seqs"
        )
        for client in clients:
            for match_id in ids:
                assert client.seqs(match_id) == list(range(1, final[match_id] + 1))
        assert all(not c.closed.is_set() for c in clients)
        assert metric(a, "livescore_ws_gap_fills_total") >= 1
    finally:
        for client in clients:
            await client.aclose()
        await make_relay.stop_all()
        await redis.aclose()
