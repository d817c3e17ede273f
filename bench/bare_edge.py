"""The baseline of bench/fanout.py: a bare Sanic WebSocket broadcast.

One Redis subscriber per process and, for every published message, a plain
``await ws.send(text)`` loop over the connected sockets: what a first
implementation usually looks like. Subscribe frames are acknowledged and
otherwise ignored (every socket gets every message).

    python bench/bare_edge.py --port 9000 --redis redis://... --channel PREFIX:changes
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from harness import run_bench_edge
from sanic import Request, Sanic, text
from sanic.server.websockets.impl import WebsocketImplProtocol


def build(redis_url: str, channel: str) -> Sanic[Any, Any]:
    app: Sanic[Any, Any] = Sanic("bare_edge", configure_logging=False)
    app.config.MOTD = False
    clients: set[WebsocketImplProtocol] = set()

    @app.get("/health")
    async def health(request: Request) -> Any:
        return text("ok")

    async def ws_handler(request: Request, ws: WebsocketImplProtocol) -> None:
        clients.add(ws)
        try:
            async for _ in ws:
                await ws.send('{"type":"subscribed"}')
        finally:
            clients.discard(ws)

    app.add_websocket_route(ws_handler, "/ws")

    async def broadcast() -> None:
        redis = aioredis.from_url(redis_url)
        pubsub = redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(channel)
        async for message in pubsub.listen():
            if message.get("type") != "message":
                continue
            data = message["data"].decode()
            for ws in list(clients):
                try:
                    await ws.send(data)
                except Exception:  # a closed socket: forget it
                    clients.discard(ws)

    @app.after_server_start
    async def start(app: Sanic[Any, Any]) -> None:
        app.add_task(broadcast(), name="broadcast")

    return app


if __name__ == "__main__":
    run_bench_edge(build)
