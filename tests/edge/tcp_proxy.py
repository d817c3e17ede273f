"""A TCP proxy a test can cut and restore: a dependency "goes down" for one edge
node while the real server keeps serving everybody else.

It runs its own event loop in a thread, so it keeps forwarding while the test
blocks (starting a node, waiting on a subprocess) and whatever loop the test
itself runs. ``start``/``cut``/``restore``/``close`` are plain calls."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any


class TcpProxy:
    """Listens on 127.0.0.1:``port`` and forwards to a TCP host:port or a unix socket."""

    def __init__(
        self, *, host: str | None = None, port: int | None = None, unix: Path | None = None
    ) -> None:
        self.target_host = host
        self.target_port = port
        self.target_unix = unix
        self.port = _free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def _call(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    def start(self) -> TcpProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def cut(self) -> None:
        """Refuse new connections and drop every open one."""
        self._call(self._cut())

    def restore(self) -> None:
        self._call(self._listen())

    def close(self) -> None:
        self._call(self._cut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        for task in list(self._tasks):
            task.cancel()
        self._tasks.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self.target_unix is not None:
                up_reader, up_writer = await asyncio.open_unix_connection(str(self.target_unix))
            else:
                assert self.target_host and self.target_port
                up_reader, up_writer = await asyncio.open_connection(
                    self.target_host, self.target_port
                )
        except OSError:
            writer.transport.abort()
            return
        if self._server is None:  # cut while this one was connecting upstream: drop it too
            writer.transport.abort()
            up_writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(_pipe(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            sink.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
