"""A lean WebSocket load generator for bench/fanout.py (one process, many sockets).

Raw asyncio protocols (``harness.RawWs``): a minimal HTTP upgrade, a masked
subscribe frame, and a frame parser that reads only what it must from each change frame: its
``seq`` (for lost/duplicate accounting) and its ``ts`` (commit time, parsed
once per seq per process) for the commit-to-client latency. Server pings are
answered (Sanic closes sockets that do not pong).

Protocol with the coordinator (stdin/stdout, one line each):
    -> "ready N"             all N sockets subscribed (or "failed REASON")
    <- "final SEQ"           the last seq written; then wait until every socket has it
    -> "{json stats}"        latencies (us), each seq's first delivery's latency (us),
                             deliveries, lost, duplicated, per-socket
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time
from datetime import datetime

import orjson
from harness import RawWs, SeqCount, generator_parser, report_and_close, run_generator, seq_in

CONNECT_CONCURRENCY = 64
_now = time.time


class Stats(SeqCount):
    __slots__ = ("deliveries", "first", "latencies", "ts_cache")

    def __init__(self) -> None:
        super().__init__()
        self.latencies: list[int] = []
        self.deliveries = 0
        self.ts_cache: dict[int, float] = {}
        #: each seq's first delivery in this process: its latency (us)
        self.first: dict[int, int] = {}


class Client(RawWs):
    __slots__ = (
        "closed", "gen", "last", "latencies", "live", "stats", "subscribed", "ts_cache",
    )  # fmt: skip

    def __init__(self, gen: Generator, host: str, port: int) -> None:
        super().__init__(host, port)
        self.gen = gen
        self.live = False  # subscribed: change frames may take the fast path
        self.last = gen.start_seq
        self.stats = gen.stats
        self.ts_cache = gen.stats.ts_cache
        self.latencies = gen.stats.latencies
        self.subscribed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed = False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.subscribed.done():
            self.subscribed.set_exception(ConnectionError(f"closed before subscribed: {exc}"))

    def on_upgraded(self) -> None:
        self.send_json(self.gen.subscribe)

    def data_received(self, data: bytes) -> None:
        if self.live and not self.buf:
            # the fast path: one whole text frame (126: a 16-bit length), the next seq,
            # whose commit time this process already parsed; anything else goes the long way
            size = len(data)
            if (
                size > 4
                and data[0] == 0x81
                and data[1] == 126
                and size == 4 + (data[2] << 8 | data[3])
            ):
                at = data.find(b'"seq":', 4)
                if at > 0:
                    seq = int(data[at + 6 : data.index(44, at)])
                    ts = self.ts_cache.get(seq)
                    if ts is not None and seq == self.last + 1:
                        self.last = seq
                        self.stats.deliveries += 1
                        self.latencies.append(int((_now() - ts) * 1_000_000))
                        return
        super().data_received(data)

    def on_text(self, data: bytes, start: int, end: int, now: float) -> None:
        """One text frame in ``data[start:end]``: only ``seq`` (and ``ts``, once per seq)."""
        if not self.subscribed.done():
            if data.startswith(b'{"type":"subscribed"', start):
                seq = orjson.loads(data[start:end]).get("seq")
                if isinstance(seq, int):
                    self.last = seq
                self.live = True
                self.subscribed.set_result(None)
            return
        seq = seq_in(data, start, end)
        stats = self.gen.stats
        if seq is None or not stats.after(self.last, seq):
            return  # pong, error; a duplicate
        self.last = seq
        stats.deliveries += 1
        ts = stats.ts_cache.get(seq)
        if ts is None:  # this seq's first delivery in this process
            t = data.rfind(b'"ts":"', start, end)
            stamp = data[t + 6 : data.index(b'"', t + 6)].decode()
            ts = stats.ts_cache[seq] = datetime.fromisoformat(stamp).timestamp()
            stats.first[seq] = int((now - ts) * 1_000_000)
        stats.latencies.append(int((now - ts) * 1_000_000))


class Generator:
    def __init__(
        self,
        nodes: list[tuple[str, int]],
        clients: int,
        match_id: int,
        start_seq: int,
        source: str | None = None,
        concurrency: int = CONNECT_CONCURRENCY,
    ):
        self.nodes = nodes
        #: the address sockets connect from (None: the kernel's choice); one per
        #: generator lifts the ~28k ephemeral ports one (source, node) pair has
        self.source = (source, 0) if source else None
        #: handshakes in flight at once (keep all generators' sum under the node's
        #: listen backlog, or overflowing SYNs time out and connects take seconds)
        self.concurrency = concurrency
        self.count = clients
        self.start_seq = start_seq
        self.subscribe = orjson.dumps({"action": "subscribe", "matchId": match_id})
        self.stats = Stats()
        self.clients: list[Client] = []

    async def connect_all(self) -> None:
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(self.concurrency)

        async def one(i: int) -> None:
            host, port = self.nodes[i % len(self.nodes)]
            async with gate:
                for attempt in range(5):
                    try:
                        _, client = await loop.create_connection(
                            lambda: Client(self, host, port), host, port, local_addr=self.source
                        )
                        break
                    except OSError:
                        if attempt == 4:
                            raise
                        await asyncio.sleep(0.2 * (attempt + 1))
                self.clients.append(client)
                await asyncio.wait_for(client.subscribed, 30)

        await asyncio.gather(*(one(i) for i in range(self.count)))

    async def wait_final(self, final: int, within: float) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if all(c.last >= final or c.closed for c in self.clients):
                return
            await asyncio.sleep(0.05)

    def report(self, final: int) -> dict[str, object]:
        behind = sum(max(0, final - c.last) for c in self.clients)
        return {
            "latencies_us": self.stats.latencies,
            "first_us": {str(seq): us for seq, us in self.stats.first.items()},
            "deliveries": self.stats.deliveries,
            "duplicated": self.stats.duplicated,
            "lost": self.stats.lost + behind,
            "closed": sum(1 for c in self.clients if c.closed),
        }


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def main(args: argparse.Namespace) -> None:
    nodes = [(n.rsplit(":", 1)[0], int(n.rsplit(":", 1)[1])) for n in args.nodes.split(",")]
    gen = Generator(nodes, args.clients, args.match, args.start_seq, args.source, args.concurrency)
    try:
        await gen.connect_all()
    except (OSError, TimeoutError, ConnectionError) as exc:
        print(f"failed {exc!r}", flush=True)
        return
    ready_cpu = _cpu()
    print(f"ready {len(gen.clients)}", flush=True)
    loop = asyncio.get_running_loop()
    line = await loop.run_in_executor(None, sys.stdin.readline)
    final = int(line.split()[1])
    await gen.wait_final(final, args.drain)
    report = gen.report(final)
    report["cpu_s"] = _cpu() - ready_cpu  # from the first change to the last frame
    report_and_close(report, gen.clients)


if __name__ == "__main__":
    parser = generator_parser()
    parser.add_argument("--nodes", required=True, help="host:port,host:port")
    parser.add_argument("--drain", type=float, default=15.0)
    parser.add_argument("--source", default=None, help="local address to connect from")
    parser.add_argument("--concurrency", type=int, default=CONNECT_CONCURRENCY)
    run_generator(main(parser.parse_args()))
