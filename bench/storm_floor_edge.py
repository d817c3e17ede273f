"""The floor of bench/storm.py: what accepting a reconnect storm costs by itself.

The edge's own way in, with nothing behind it: Sanic's server with the edge's
door (``edge.framework.Door``, as ``livescore serve`` runs it: an upgrade request
that came whole is read at the door, ``edge.ws_frames.read_upgrade_head``, and
answered there; one that did not takes Sanic's HTTP machinery and router and
the hand-over, ``edge.framework.hand_over``, as in ``edge/ws_routes.py``), the
edge's handshake (``edge.ws_frames.accept``), the socket given to a lean
protocol, a canned ``welcome`` frame, and for each
``subscribe`` a canned resumed ``subscribed`` frame (``seq`` = the client's
``since``), and the edge's garbage-collector freezer (``GcFreezer``: without it
10,000 new connections bring full collections the edge does not have). No
hub, no database, no admission, no broadcast: a client that was
behind at the kill never catches up here (it counts as missing). ``--redis``
and ``--channel`` are accepted and unused, like the other bench edges'
command lines.

    python bench/storm_floor_edge.py --port 9000 --redis redis://... --channel PREFIX:changes
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

import orjson
from harness import run_bench_edge
from sanic import HTTPResponse, Request, Sanic, text

from edge import framework
from edge import ws_frames as wf
from edge import ws_protocol as wp
from edge.ws_metrics import PROBE_EVERY, GcFreezer

WELCOME = wp.text_frame(wp.welcome("storm-floor"))


class Floor(asyncio.Protocol):
    """An upgraded socket: answers each text frame's subscribe, nothing else."""

    __slots__ = ("buffer", "clients", "transport")

    def __init__(self, transport: Any, clients: set[Floor]) -> None:
        self.transport = transport
        self.clients = clients
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        data = self.buffer + data
        at = 0
        while (frame := wf.parse_frame(data, at, wp.MAX_CLIENT_FRAME)) is not None:
            opcode, _, payload, at = frame
            if opcode != 1:
                continue
            body = orjson.loads(payload)
            answer = {
                "type": "subscribed",
                "matchId": body.get("matchId"),
                "seq": body.get("since"),
                "resumed": True,
            }
            self.transport.write(wp.text_frame(orjson.dumps(answer)))
            self.clients.add(self)
        self.buffer = data[at:]

    def connection_lost(self, exc: Exception | None) -> None:
        self.clients.discard(self)


def build(redis_url: str, channel: str) -> Sanic[Any, Any]:
    app: Sanic[Any, Any] = Sanic("storm_floor_edge", configure_logging=False)
    app.config.MOTD = False
    clients: set[Floor] = set()

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

    async def ws_entry(request: Request) -> HTTPResponse | None:
        headers = request.headers
        head = wf.accept(
            headers.getall("connection", []),
            headers.getall("upgrade", []),
            headers.getall("sec-websocket-key", []),
            headers.getall("sec-websocket-version", []),
        )
        transport: Any = request.transport
        transport.write(head + WELCOME)  # in one write, as edge/ws_routes.py does
        floor = Floor(transport, clients)
        received, _ = framework.hand_over(request, floor)
        if received:
            floor.data_received(received)
        return None

    framework.upgrades_itself(ws_entry)
    app.add_route(ws_entry, "/ws", methods=["GET"], name="ws")

    def at_the_door(transport: Any, data: bytes, connections: set[Any]) -> bool:
        """As ``edge.ws_routes.at_the_door`` does, with no admission and no session."""
        head = wf.read_upgrade_head(data, "GET /ws HTTP/1.1", framework.header_limit(app))
        if head is None:
            return False
        answer = head.answer()
        if answer is None:
            return False
        transport.write(answer + WELCOME)
        floor = Floor(transport, clients)
        transport.set_protocol(floor)
        if head.rest:
            floor.data_received(head.rest)
        return True

    @app.after_server_start
    async def open_the_door(app: Sanic[Any, Any]) -> None:
        framework.at_the_door(app, b"GET /ws HTTP/1.1\r\n", at_the_door)

    async def probe() -> None:
        """The edge's stall probe (edge.ws_metrics.StallProbe), in small."""
        every = PROBE_EVERY
        while True:
            start = time.monotonic()
            await asyncio.sleep(every)
            now = time.monotonic()
            stalls.append((now, max(now - start - every, 0.0)))
            while stalls and stalls[0][0] < now - 10:
                stalls.pop(0)

    async def freeze() -> None:
        """The edge's freezer (``start_hub``): startup's objects, then survivors every
        half second, out of the collector's sight."""
        # (no closed count: the floor's connections end with the round, never turned over)
        freezer = GcFreezer(lambda: len(clients), lambda: 0)
        gc.collect()
        gc.freeze()
        while True:
            await asyncio.sleep(freezer.every)
            freezer.tick()

    app.add_task(probe())  # started with the server
    app.add_task(freeze())
    return app


if __name__ == "__main__":
    run_bench_edge(build, framework.Door)
