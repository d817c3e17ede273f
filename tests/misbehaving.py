"""A local provider that misbehaves on a real socket: a raw asyncio HTTP/1.1
server (one request per connection) whose answer is chosen by the first path
segment, so several feeds can point their ``--base-url`` at one server
(``{url}/steady``, ``{url}/throttled``...).

Answers are ``Behaviour`` coroutines writing to the socket themselves, so a
body can be huge without ever being in memory (``huge``), dripped a byte at a
time (``drip``) or an ordinary reply (``reply``, ``throttle``). The server
counts requests per segment (and when each came) and the most connections
it had open at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable

Behaviour = Callable[[asyncio.StreamWriter], Awaitable[None]]

_REASONS = {200: "OK", 404: "Not Found", 429: "Too Many Requests", 503: "Service Unavailable"}


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Whatever')}", "connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def reply(status: int = 200, body: str = "", headers: dict[str, str] | None = None) -> Behaviour:
    data = body.encode()

    async def answer(writer: asyncio.StreamWriter) -> None:
        head = {"content-type": "application/json", "content-length": str(len(data))}
        writer.write(_head(status, {**head, **(headers or {})}) + data)
        await writer.drain()

    return answer


def throttle(retry_after: str | None = "60", **headers: str) -> Behaviour:
    """HTTP 429, with ``Retry-After`` unless None (and any extra headers)."""
    extra = dict(headers)
    if retry_after is not None:
        extra["retry-after"] = retry_after
    return reply(429, '{"message": "You reached your request limit."}', extra)


def huge(size: int, *, declare_length: bool) -> Behaviour:
    """A 200 of ``size`` bytes sent in 64 KiB writes of one reused block;
    without ``declare_length`` the body simply runs until the connection closes."""
    block = b" " * 65536

    async def answer(writer: asyncio.StreamWriter) -> None:
        head = {"content-type": "application/json"}
        if declare_length:
            head["content-length"] = str(size)
        writer.write(_head(200, head))
        sent = 0
        while sent < size:
            chunk = block[: min(len(block), size - sent)]
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)

    return answer


def drip(every_s: float, size: int = 100_000) -> Behaviour:
    """A 200 announcing ``size`` bytes, then one byte every ``every_s`` seconds."""

    async def answer(writer: asyncio.StreamWriter) -> None:
        writer.write(_head(200, {"content-type": "application/json", "content-length": str(size)}))
        for _ in range(size):
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(every_s)

    return answer


def delayed(seconds: float, then: Behaviour) -> Behaviour:
    async def answer(writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(seconds)
        await then(writer)

    return answer


class MisbehavingProvider:
    """``async with MisbehavingProvider() as server:`` set ``server.routes[segment]``."""

    def __init__(self) -> None:
        self.routes: dict[str, Behaviour] = {}
        self.requests: Counter[str] = Counter()
        #: (segment, wall-clock time) of every request, in arrival order
        self.seen: list[tuple[str, float]] = []
        self.open_now: Counter[str] = Counter()
        self.most_open: Counter[str] = Counter()
        self.url = ""
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> MisbehavingProvider:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()  # a dripping answer ends at its next write
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        self._writers.add(writer)
        segment = ""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode()
            segment = path.lstrip("/").split("/", 1)[0].split("?", 1)[0]
            self.requests[segment] += 1
            self.seen.append((segment, time.time()))
            self.open_now[segment] += 1
            self.most_open[segment] = max(self.most_open[segment], self.open_now[segment])
            behaviour = self.routes.get(segment) or reply(404, '{"message": "no such route"}')
            await behaviour(writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client hung up (a cap or a deadline cut it): that is the point
        finally:
            if segment:
                self.open_now[segment] -= 1
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            self._tasks.discard(task)  # type: ignore[arg-type]
            self._writers.discard(writer)
