"""The reconnect-storm load generator of bench/storm.py (one process, many sockets).

Each socket subscribes to the hot match on node A and follows its seqs. When
its connection to A is lost (the bench SIGKILLs A), it reconnects to node B at
once and subscribes again with ``since`` = the last seq it got, as a real
client would. It records when B confirmed the resume and the first frames
that followed, so the coordinator can tell when each client had caught up.

Raw asyncio protocols (``harness.RawWs``, as bench/loadgen.py): a minimal HTTP
upgrade, masked client frames, a parser that reads ``type`` and ``seq`` only.
Server pings are answered.

Coming back, as a well-behaved client does: a reconnect that fails (refused
with 429/503, a connect or handshake that times out, the connection dropped
before the resume was confirmed) is tried again after a pause drawn at random
up to ``BACKOFF_BASE * 2**attempt`` (at most ``BACKOFF_CAP``; at least the
server's ``Retry-After``, capped the same way), until ``--window`` seconds
after the client lost A; a subscribe answered with ``unavailable`` (or
``rate_limited``), even after its ``subscribed`` frame (a join that failed
half-way leaves no subscription on the node), is sent again the same way, with
``since`` = the last seq the client has.

Protocol with the coordinator (stdin/stdout, one line each):
    -> "ready N"                      all N sockets subscribed on A (or "failed REASON")
    <- "target S T0 FINAL"            A died at T0 (unix time) at seq S; the writer
                                      stopped at FINAL: wait until every socket has it
    -> "{json stats}"                 caught-up seconds per client, lost, duplicated, ...
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time

import orjson
from harness import (
    RawWs,
    Refused,
    SeqCount,
    generator_parser,
    report_and_close,
    run_generator,
    seq_in,
)

#: Connections opened at once (the first connect to A, and the reconnects to B), by default.
CONNECT_CONCURRENCY = 64
#: Frames remembered per client after its resume (the replay is a few frames).
TRACKED = 64
#: Reconnect pauses: uniform in [0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)] seconds.
BACKOFF_BASE = 0.05
BACKOFF_CAP = 5.0
#: Seconds one attempt may take to connect (TCP and the upgrade), then to be resumed.
CONNECT_TIMEOUT = 15.0
SUBSCRIBE_TIMEOUT = 30.0
#: Error codes a subscribe is sent again for (after a pause).
RETRIED_ERRORS = (b'"code":"unavailable"', b'"code":"rate_limited"')
_now = time.time


def pause(attempt: int, retry_after: float | None = None) -> float:
    """Seconds to wait before attempt ``attempt + 1`` (full jitter, capped)."""
    wait = random.uniform(0.0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt))
    if retry_after is not None:
        wait = max(wait, min(retry_after, BACKOFF_CAP) * random.uniform(1.0, 1.5))
    return wait


class Client(RawWs):
    __slots__ = (
        "after", "closed", "gen", "last", "lost_at", "moved", "resets", "resubscribes",
        "resumed_at", "subscribed",
    )  # fmt: skip

    def __init__(
        self, gen: Generator, host: str, port: int, *, before: Client | None = None
    ) -> None:
        super().__init__(host, port)
        self.gen = gen
        self.last = gen.start_seq
        self.subscribed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed = False
        #: reconnected to B after ``before`` lost A (its history carries over)
        self.moved = before is not None
        self.lost_at = 0.0
        if before is not None:
            self.last = before.last
            self.lost_at = before.lost_at
        self.resumed_at = 0.0
        self.resets = 0
        self.resubscribes = 0
        #: (seq, time) of the first frames after the resume
        self.after: list[tuple[int, float]] = []

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.subscribed.done():
            self.subscribed.set_exception(ConnectionError(f"closed before subscribed: {exc}"))
        elif not self.moved:
            self.lost_at = _now()
            self.gen.reconnect(self)

    def on_upgraded(self) -> None:
        self.subscribe()

    def subscribe(self) -> None:
        if self.closed:
            return
        body: dict[str, str | int] = {"action": "subscribe", "matchId": self.gen.match_id}
        if self.moved:
            body["since"] = self.last
        self.send_json(orjson.dumps(body))

    def on_refused(self, error: Refused) -> None:
        if not self.subscribed.done():
            self.subscribed.set_exception(error)
        if self.transport is not None:
            self.transport.close()

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
            frame = data[start:end]
            # the subscribe was not done (a join can fail after its "subscribed" frame too:
            # the node then holds no subscription for it): ask again, from what it has
            if any(code in frame for code in RETRIED_ERRORS):
                self.resubscribes += 1
                delay = pause(self.resubscribes)
                asyncio.get_running_loop().call_later(delay, self.subscribe)
            return
        seq = seq_in(data, start, end)
        if seq is None or not stats.counts.after(self.last, seq):
            return  # pong, welcome; a duplicate
        self.last = seq
        if self.moved and len(self.after) < TRACKED:
            self.after.append((seq, now))


class Generator:
    def __init__(
        self,
        a: tuple[str, int],
        b: tuple[str, int],
        clients: int,
        match_id: int,
        start_seq: int,
        window: float,
        concurrency: int = CONNECT_CONCURRENCY,
    ) -> None:
        self.a, self.b = a, b
        self.count = clients
        self.match_id = match_id
        self.start_seq = start_seq
        self.window = window
        self.concurrency = concurrency
        self.clients: list[Client] = []
        self.moved: list[Client] = []
        self.counts = SeqCount()
        self.errors = 0
        self.failed = 0
        self.retries = 0
        self.refused = 0
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
            async with asyncio.timeout(60):
                await client.subscribed
            return client

    async def connect_all(self) -> None:
        self.gate = asyncio.Semaphore(self.concurrency)
        self.clients = await asyncio.gather(*(self.connect(*self.a) for _ in range(self.count)))

    def reconnect(self, old: Client) -> None:
        task = asyncio.get_running_loop().create_task(self._reconnect(old))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _reconnect(self, old: Client) -> None:
        """Connect to B and resume until it works or the window closes."""
        loop = asyncio.get_running_loop()
        assert self.gate is not None
        deadline = time.monotonic() + self.window
        attempt = 0
        while True:
            retry_after: float | None = None
            client: Client | None = None
            async with self.gate:
                try:
                    async with asyncio.timeout(CONNECT_TIMEOUT):
                        _, client = await loop.create_connection(
                            lambda: Client(self, *self.b, before=old), *self.b
                        )
                    async with asyncio.timeout(SUBSCRIBE_TIMEOUT):
                        await client.subscribed
                    self.moved.append(client)
                    return
                except (OSError, TimeoutError) as exc:  # (ConnectionError, Refused included)
                    if isinstance(exc, Refused):
                        self.refused += 1
                        retry_after = exc.retry_after
                    if client is not None and client.transport is not None:
                        client.transport.abort()
            attempt += 1
            wait = pause(attempt, retry_after)
            if time.monotonic() + wait >= deadline:
                self.failed += 1
                return
            self.retries += 1
            await asyncio.sleep(wait)

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
            "not_caught_up": late + (self.count - len(self.moved) - self.failed),
            "moved": len(self.moved),
            "lost": self.counts.lost + behind,
            "duplicated": self.counts.duplicated,
            "resets": sum(c.resets for c in self.moved),
            "errors": self.errors,
            "failed": self.failed,
            "retries": self.retries,
            "refused": self.refused,
            "resubscribes": sum(c.resubscribes for c in self.moved),
        }


async def main(args: argparse.Namespace) -> None:
    def address(text: str) -> tuple[str, int]:
        host, port = text.rsplit(":", 1)
        return host, int(port)

    gen = Generator(
        address(args.a),
        address(args.b),
        args.clients,
        args.match,
        args.start_seq,
        args.window,
        args.concurrency,
    )
    try:
        await gen.connect_all()
    except (OSError, TimeoutError) as exc:
        print(f"failed {exc!r}", flush=True)
        return
    print(f"ready {len(gen.clients)}", flush=True)
    loop = asyncio.get_running_loop()
    line = await loop.run_in_executor(None, sys.stdin.readline)
    _, target, killed_at, final = line.split()
    await gen.wait_final(int(final), args.drain)
    report = gen.report(int(target), float(killed_at), int(final))
    report_and_close(report, gen.moved)


if __name__ == "__main__":
    parser = generator_parser()
    parser.add_argument("--a", required=True, help="host:port of node A (killed)")
    parser.add_argument("--b", required=True, help="host:port of node B")
    parser.add_argument("--drain", type=float, default=60.0)
    parser.add_argument(
        "--window", type=float, default=300.0, help="seconds a client keeps trying to get back"
    )
    parser.add_argument(
        "--concurrency", type=int, default=CONNECT_CONCURRENCY, help="connects in flight"
    )
    run_generator(main(parser.parse_args()))
