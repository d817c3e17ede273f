"""Real processes and real clients for the WebSocket tests.

ws_url, metric  what a test asks of an edge node (``tests.edge.conftest.EdgeNode``)
WsClient        a ``websockets`` client that records every frame it receives
RawClient       a bare socket that can stop reading (the slow-client test)
PrivateRedis    a redis-server of one test's own (kill and restart it at will)
play            one step of a match through the real write path
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode

from livescore.model import Clock, EventType, MatchPatch, MatchState, NewEvent, Period
from store.db import Conn
from store.writes import Change, apply_change
from tests.edge.conftest import EdgeNode
from tests.waiting import eventually

CHANGE_TYPES = frozenset(
    {"score:update", "commentary:new", "commentary:update", "match:status", "match:update"}
)


def ws_url(node: EdgeNode) -> str:
    return f"ws://127.0.0.1:{node.port}/ws"


def http_get(node: EdgeNode, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(node.url + path, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def metric(node: EdgeNode, name: str) -> float:
    """The sum of a metric's samples on a node's /metrics (0 when absent)."""
    _, body = http_get(node, "/metrics")
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


class WsClient:
    """A real WebSocket client recording every frame (parsed) in ``frames``."""

    def __init__(self, url: str, **connect_kwargs: Any) -> None:
        self.url = url
        self.connect_kwargs = connect_kwargs
        self.frames: list[dict[str, Any]] = []
        self.ws: ClientConnection | None = None
        self.closed: asyncio.Event = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> WsClient:
        self.ws = await connect(self.url, open_timeout=10, **self.connect_kwargs)
        self._reader = asyncio.create_task(self._read())
        await self.wait_for(lambda f: f["type"] == "welcome")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for message in self.ws:
                self.frames.append(orjson.loads(message))
        except ConnectionClosed:
            pass
        finally:
            self.closed.set()

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code if self.ws is not None else None

    async def send(self, payload: Any) -> None:
        assert self.ws is not None
        await self.ws.send(
            payload if isinstance(payload, str | bytes) else orjson.dumps(payload).decode()
        )

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], within: float = 10.0, start: int = 0
    ) -> dict[str, Any]:
        """The first frame from index ``start`` on matching ``predicate``."""

        def found() -> dict[str, Any]:
            for frame in self.frames[start:]:
                if predicate(frame):
                    return frame
            if self.closed.is_set():
                raise ConnectionError(
                    f"closed ({self.close_code}) before the frame came: {self.frames[-5:]}"
                )
            raise AssertionError(f"last frames: {self.frames[-5:]}")

        return await eventually(found, within, "such a frame", every=0.01)

    async def request(self, payload: Any, within: float = 10.0) -> dict[str, Any]:
        """Send an action and return the next non-change frame that answers it."""
        start = len(self.frames)
        await self.send(payload)
        return await self.wait_for(lambda f: f["type"] not in CHANGE_TYPES, within, start)

    def seqs(self, match_id: int) -> list[int]:
        """Seqs of the change frames received for a match, in arrival order."""
        return [
            f["seq"]
            for f in self.frames
            if f["type"] in CHANGE_TYPES and f.get("matchId") == match_id
        ]

    def position(self, match_id: int) -> int | None:
        """The client's view: the seq of the latest subscribed frame or change for a match."""
        seq = None
        for frame in self.frames:
            if frame.get("matchId") != match_id:
                continue
            if frame["type"] == "subscribed" or frame["type"] in CHANGE_TYPES:
                seq = frame["seq"]
        return seq


async def play(conn: Conn, match_id: int, step: int, *, message_size: int = 0) -> list[Change]:
    """One step of a match through the write path: a goal (commentary + score) on
    even steps, a commentary line on odd ones. Returns the changes written."""
    text = f"step {step} " + "x" * message_size
    if step % 2:
        patch = MatchPatch(
            source="test",
            new_events=(NewEvent(type=EventType.TEXT, minute=step % 90, message=text),),
        )
        return await apply_change(conn, match_id, patch)

    def goal(state: MatchState) -> MatchPatch:
        return MatchPatch(
            source="test",
            home_score=state.home_score + 1,
            away_score=state.away_score,
            clock=Clock(minute=step % 90, period=Period.FIRST_HALF),
            new_events=(
                NewEvent(type=EventType.GOAL, minute=step % 90, side="home", message=text),
            ),
        )

    return await apply_change(conn, match_id, goal)


async def current_seq(conn: Conn, match_id: int) -> int:
    cur = await conn.execute("SELECT seq FROM matches WHERE id = %s", (match_id,))
    row = await cur.fetchone()
    assert row is not None
    return int(row["seq"])


class RawClient:
    """A bare-socket WebSocket client (blocking; call it through ``asyncio.to_thread``)
    with a tiny receive buffer, for a client that stops reading."""

    def __init__(self, port: int, *, rcvbuf: int = 4096) -> None:
        self.port = port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.buffer = b""

    def handshake(self) -> None:
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", self.port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(4096)
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def send(self, payload: Any) -> None:
        text = orjson.dumps(payload)
        self.sock.sendall(Frame(Opcode.TEXT, text).serialize(mask=True, extensions=[]))

    def drain(self, within: float = 10.0) -> list[Frame]:
        """Read until the server closes; every frame received (a reset ends it too)."""
        self.sock.settimeout(within)
        data = self.buffer
        try:
            while chunk := self.sock.recv(65536):
                data += chunk
        except (ConnectionResetError, TimeoutError):
            pass
        frames, i = [], 0
        while i + 2 <= len(data):
            opcode, n = data[i] & 0x0F, data[i + 1] & 0x7F
            i += 2
            if n == 126:
                n, i = int.from_bytes(data[i : i + 2], "big"), i + 2
            elif n == 127:
                n, i = int.from_bytes(data[i : i + 8], "big"), i + 8
            if i + n > len(data):
                break
            frames.append(Frame(Opcode(opcode), data[i : i + n]))
            i += n
        return frames

    def close(self) -> None:
        self.sock.close()
