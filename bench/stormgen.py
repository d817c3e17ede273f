"""The reconnect-storm load generator of bench/storm.py (one process, many sockets).

Each socket subscribes to the hot match on node A and follows its seqs. When
its connection to A is lost (the bench SIGKILLs A), it reconnects to node B at
once and subscribes again with ``since`` = the last seq it got, as a real
client would. It records when B confirmed the resume and the first frames
that followed, so the coordinator can tell when each client had caught up.

Raw asyncio protocols like bench/loadgen.py: a minimal HTTP upgrade, masked
client frames, a parser that reads ``type`` and ``seq`` only. Server pings
are answered.

Protocol with the coordinator (stdin/stdout, one line each):
    -> "ready N"                      all N sockets subscribed on A (or "failed REASON")
    <- "target S T0 FINAL"            A died at T0 (unix time) at seq S; the writer
                                      stopped at FINAL: wait until every socket has it
    -> "{json stats}"                 caught-up seconds per client, lost, duplicated, ...
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import resource
import sys
import time

import orjson

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None  # type: ignore[assignment]

#: Connections opened at once (the first connect to A, and the reconnects to B).
CONNECT_CONCURRENCY = 64
#: Frames remembered per client after its resume (the replay is a few frames).
TRACKED = 64
_now = time.time


def masked(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    n = len(payload)
    head = bytes((0x80 | opcode, 0x80 | n)) if n < 126 else bytes((0x80 | opcode, 0xFE))
    if n >= 126:
        head += n.to_bytes(2, "big")
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + body


class Client(asyncio.Protocol):
    __slots__ = (
        "after", "buf", "closed", "gen", "host", "last", "lost_at", "moved", "port",
        "resets", "resumed_at", "subscribed", "transport", "upgraded",
    )  # fmt: skip

    def __init__(
        self, gen: Generator, host: str, port: int, *, before: Client | None = None
    ) -> None:
        self.gen = gen
        self.host, self.port = host, port
        self.buf = bytearray()
        self.upgraded = False
        self.last = gen.start_seq
        self.subscribed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        #: reconnected to B after ``before`` lost A (its history carries over)
        self.moved = before is not None
        self.lost_at = 0.0
        if before is not None:
            self.last = before.last
            self.lost_at = before.lost_at
        self.resumed_at = 0.0
        self.resets = 0
        #: (seq, time) of the first frames after the resume
        self.after: list[tuple[int, float]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(  # type: ignore[attr-defined]
            f"GET /ws HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.subscribed.done():
            self.subscribed.set_exception(ConnectionError(f"closed before subscribed: {exc}"))
        elif not self.moved:
            self.lost_at = _now()
            self.gen.reconnect(self)

    def data_received(self, data: bytes) -> None:
        now = _now()
        if self.buf:
            data = bytes(self.buf) + data
            self.buf = bytearray()
        if not self.upgraded:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.buf += data
                return
            if not data.startswith(b"HTTP/1.1 101"):
                raise ConnectionError(data[:200].decode(errors="replace"))
            data = data[end + 4 :]
            self.upgraded = True
            assert self.transport is not None
            body = {"action": "subscribe", "matchId": self.gen.match_id}
            if self.moved:
                body["since"] = self.last
            self.transport.write(masked(1, orjson.dumps(body)))
        pos, size = 0, len(data)
        while size - pos >= 2:
            opcode, n = data[pos] & 0x0F, data[pos + 1] & 0x7F
            head = 2
            if n == 126:
                if size - pos < 4:
                    break
                n, head = int.from_bytes(data[pos + 2 : pos + 4], "big"), 4
            elif n == 127:
                if size - pos < 10:
                    break
                n, head = int.from_bytes(data[pos + 2 : pos + 10], "big"), 10
            start = pos + head
            if size - start < n:
                break
            pos = start + n
            if opcode == 1:
                self.on_text(data, start, pos, now)
            elif opcode == 9 and self.transport is not None:
                self.transport.write(masked(10, data[start:pos]))
        if pos < size:
            self.buf += data[pos:]

    def on_text(self, data: bytes, start: int, end: int, now: float) -> None:
        stats = self.gen
        if data.startswith(b'{"type":"subscribed"', start):
            body = orjson.loads(data[start:end])
            seq = body.get("seq")
            if self.moved:
                self.resumed_at = now
                if not body.get("resumed"):
                    self.resets += 1  # a fresh snapshot instead of the replay
                    if isinstance(seq, int):
                        self.last = seq
            elif isinstance(seq, int):
                self.last = seq
            if not self.subscribed.done():
                self.subscribed.set_result(None)
            return
        if data.startswith(b'{"type":"error"', start):
            stats.errors += 1
            return
        at = data.find(b'"seq":', start, end)
        if at < 0:
            return  # pong, welcome
        seq = int(data[at + 6 : data.index(b",", at)])
        last = self.last
        if seq != last + 1:
            if seq <= last:
                stats.duplicated += 1
                return
            stats.lost += seq - last - 1
        self.last = seq
        if self.moved and len(self.after) < TRACKED:
            self.after.append((seq, now))


class Generator:
    def __init__(
        self, a: tuple[str, int], b: tuple[str, int], clients: int, match_id: int, start_seq: int
    ) -> None:
        self.a, self.b = a, b
        self.count = clients
        self.match_id = match_id
        self.start_seq = start_seq
        self.clients: list[Client] = []
        self.moved: list[Client] = []
        self.duplicated = 0
        self.lost = 0
        self.errors = 0
        self.failed = 0
        self.gate: asyncio.Semaphore | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    async def connect(self, host: str, port: int) -> Client:
        loop = asyncio.get_running_loop()
        assert self.gate is not None
        async with self.gate:
            for attempt in range(20):
                try:
                    _, client = await loop.create_connection(
                        lambda: Client(self, host, port), host, port
                    )
                    break
                except OSError:
                    if attempt == 19:
                        raise
                    await asyncio.sleep(0.05 * (attempt + 1))
            await asyncio.wait_for(client.subscribed, 60)
            return client

    async def connect_all(self) -> None:
        self.gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        self.clients = await asyncio.gather(*(self.connect(*self.a) for _ in range(self.count)))

    def reconnect(self, old: Client) -> None:
        task = asyncio.get_running_loop().create_task(self._reconnect(old))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _reconnect(self, old: Client) -> None:
        loop = asyncio.get_running_loop()
        assert self.gate is not None
        async with self.gate:
            for attempt in range(50):
                try:
                    _, client = await loop.create_connection(
                        lambda: Client(self, *self.b, before=old), *self.b
                    )
                    break
                except OSError:
                    if attempt == 49:
                        self.failed += 1
                        return
                    await asyncio.sleep(0.05 * (attempt + 1))
            self.moved.append(client)
            try:
                await asyncio.wait_for(client.subscribed, 60)
            except (TimeoutError, ConnectionError):
                self.failed += 1

    async def wait_final(self, final: int, within: float) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if len(self.moved) + self.failed >= self.count and all(
                c.last >= final or c.closed for c in self.moved
            ):
                return
            await asyncio.sleep(0.05)

    def report(self, target: int, killed_at: float, final: int) -> dict[str, object]:
        caught: list[float] = []
        late = 0
        for c in self.moved:
            at = c.resumed_at
            if c.last < target and at:
                reached = next((t for seq, t in c.after if seq >= target), None)
                if reached is None:
                    late += 1
                    continue
                at = max(at, reached)
            elif not at:
                late += 1
                continue
            caught.append(at - killed_at)
        behind = sum(max(0, final - c.last) for c in self.moved)
        return {
            "caught_up_s": caught,
            "not_caught_up": late + (self.count - len(self.moved)),
            "moved": len(self.moved),
            "lost": self.lost + behind,
            "duplicated": self.duplicated,
            "resets": sum(c.resets for c in self.moved),
            "errors": self.errors,
            "failed": self.failed,
        }


async def main(args: argparse.Namespace) -> None:
    def address(text: str) -> tuple[str, int]:
        host, port = text.rsplit(":", 1)
        return host, int(port)

    gen = Generator(address(args.a), address(args.b), args.clients, args.match, args.start_seq)
    try:
        await gen.connect_all()
    except (OSError, TimeoutError, ConnectionError) as exc:
        print(f"failed {exc!r}", flush=True)
        return
    print(f"ready {len(gen.clients)}", flush=True)
    loop = asyncio.get_running_loop()
    line = await loop.run_in_executor(None, sys.stdin.readline)
    _, target, killed_at, final = line.split()
    await gen.wait_final(int(final), args.drain)
    report = gen.report(int(target), float(killed_at), int(final))
    sys.stdout.write(orjson.dumps(report).decode() + "\n")
    sys.stdout.flush()
    for client in gen.moved:
        if client.transport is not None:
            client.transport.abort()


if __name__ == "__main__":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    parser = argparse.ArgumentParser()
    parser.add_argument("--a", required=True, help="host:port of node A (killed)")
    parser.add_argument("--b", required=True, help="host:port of node B")
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--match", type=int, required=True)
    parser.add_argument("--start-seq", type=int, required=True)
    parser.add_argument("--drain", type=float, default=60.0)
    arguments = parser.parse_args()
    if uvloop is not None:
        uvloop.run(main(arguments))
    else:
        asyncio.run(main(arguments))
