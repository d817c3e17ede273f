"""The floor of bench/storm.py: what accepting a reconnect storm costs by itself.

A bare Sanic WebSocket endpoint (Sanic's own handshake, as ``livescore serve``
uses) that answers each ``subscribe`` with a canned resumed ``subscribed``
frame (``seq`` = the client's ``since``) and nothing else: no hub, no
database, no checks, no broadcast (a client that was behind at the kill never
catches up here: it counts as missing). ``--redis`` and ``--channel`` are
accepted and unused, like the other bench edges' command lines.

    python bench/storm_floor_edge.py --port 9000 --redis redis://... --channel PREFIX:changes
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from harness import bench_edge_args, serve_sanic
from sanic import Request, Sanic, text
from sanic.server.websockets.impl import WebsocketImplProtocol


def build(redis_url: str, channel: str) -> Sanic[Any, Any]:
    app: Sanic[Any, Any] = Sanic("storm_floor_edge", configure_logging=False)
    app.config.MOTD = False
    app.config.WEBSOCKET_PING_INTERVAL = None
    clients: set[WebsocketImplProtocol] = set()

    stalls: list[tuple[float, float]] = []  # (when, how late), the last 10 s

    @app.get("/health")
    async def health(request: Request) -> Any:
        return text("ok")

    @app.get("/metrics")
    async def metrics(request: Request) -> Any:
        since = time.monotonic() - 10
        worst = max((late for at, late in stalls if at >= since), default=0.0)
        return text(
            f"livescore_ws_connections {len(clients)}\n"
            f"livescore_event_loop_stall_max_seconds {worst}\n"
        )

    async def probe() -> None:
        """The edge's stall probe (edge.ws_metrics.StallProbe), in small."""
        while True:
            start = time.monotonic()
            await asyncio.sleep(0.01)
            now = time.monotonic()
            stalls.append((now, max(now - start - 0.01, 0.0)))
            while stalls and stalls[0][0] < now - 10:
                stalls.pop(0)

    async def ws_handler(request: Request, ws: WebsocketImplProtocol) -> None:
        try:
            async for message in ws:
                body = orjson.loads(message)
                await ws.send(
                    orjson.dumps(
                        {
                            "type": "subscribed",
                            "matchId": body.get("matchId"),
                            "seq": body.get("since"),
                            "resumed": True,
                        }
                    ).decode()
                )
                clients.add(ws)
        finally:
            clients.discard(ws)

    app.add_websocket_route(ws_handler, "/ws")

    @app.after_server_start
    async def start(app: Sanic[Any, Any]) -> None:
        app.add_task(probe(), name="probe")

    return app


if __name__ == "__main__":
    args = bench_edge_args()
    serve_sanic(build(args.redis, args.channel), args.port)
