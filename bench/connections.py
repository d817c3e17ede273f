"""Many idle WebSocket connections on ONE edge node: what each costs, how fast they
come, how fast one change reaches them all (issue 18, lean connections).

    .venv/bin/python bench/connections.py --clients 50000

For each implementation (``livescore serve``; ``bench/floor_edge.py``, the
framework-free floor of ``bench/fanout.py``), in the same run: one node,
``--clients`` subscribers to one match from ``--generators`` load-generator
processes (``bench/loadgen.py``), each connecting from its own loopback
address (127.0.0.2, .3, ...: one source address has about 28,000 ephemeral
ports towards one node). It prints:

* RSS per connection: the node's RSS once every client subscribed (and 2 s
  of settling) minus its RSS before, divided by the clients;
* connect time: from starting the generators until every client is
  subscribed (handshake, welcome, subscribe, subscribed);
* one change's delivery: ONE change written through ``apply_change`` and
  published by the real relay; commit-to-client latency p50/p99/max over
  every client, and how many got it.

The open-file limit is raised for this process and its children
(``resource.setrlimit``; as root, above the hard limit too). Uses
DATABASE_URL / REDIS_URL when set, else the embedded servers; a scratch
database and Redis prefix, dropped at the end (``bench/fanout.py``'s ``Bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from fanout import LIVESCORE, PYTHON, Bench, free_port, rss_bytes  # noqa: E402

from livescore.keys import Keys  # noqa: E402
from livescore.model import MatchPatch  # noqa: E402
from livescore.runtime import redis_client  # noqa: E402
from pipeline.relay import Relay  # noqa: E402
from store.db import open_pool  # noqa: E402
from store.writes import apply_change  # noqa: E402

#: File descriptors asked for (the node and each generator hold one per socket).
FILES = 200_000
LABELS = {"livescore": "livescore (lean)", "floor": "floor: bare writes"}


@dataclass
class Row:
    kind: str
    clients: int
    rss_per_conn: float
    connect_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    delivered: int
    closed: int


def raise_file_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(hard, FILES)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
    except (ValueError, OSError):  # not root: as far as the hard limit goes
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Connections(Bench):
    def start_node(self, kind: str) -> tuple[int, subprocess.Popen[bytes]]:
        port = free_port()
        if kind == "livescore":
            command = [LIVESCORE, "serve", "--host", "127.0.0.1", "--port", str(port)]
        else:
            command = [
                PYTHON, str(ROOT / "bench" / "floor_edge.py"), "--port", str(port),
                "--redis", self.endpoints.redis_url,
                "--channel", Keys(self.prefix).changes_channel,
            ]  # fmt: skip
        log = (self.logs / f"connections-{kind}.log").open("wb")
        proc = subprocess.Popen(
            command, env=self.env(LIVESCORE_NODE_ID="bench-c"), stdout=log, stderr=log
        )
        self.wait_healthy(port, proc, kind)
        return port, proc

    def wait_healthy(self, port: int, proc: subprocess.Popen[bytes], kind: str) -> None:
        import urllib.request

        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{kind} node on {port} exited; see {self.logs}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{kind} node on {port} never got healthy") from None
                time.sleep(0.2)

    def generators(self, port: int, match_id: int, start_seq: int) -> list[subprocess.Popen[str]]:
        args = self.args
        per = args.clients // args.generators
        gens = []
        for g in range(args.generators):
            count = per if g < args.generators - 1 else args.clients - per * g
            command = [
                PYTHON, str(ROOT / "bench" / "loadgen.py"), "--nodes", f"127.0.0.1:{port}",
                "--clients", str(count), "--match", str(match_id), "--start-seq", str(start_seq),
                "--source", f"127.0.0.{2 + g}", "--drain", "60",
            ]  # fmt: skip
            gens.append(
                subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            )
        for gen in gens:
            assert gen.stdout is not None
            line = gen.stdout.readline().strip()
            if not line.startswith("ready"):
                raise RuntimeError(f"load generator: {line or 'exited'}")
        return gens

    async def run(self, kind: str, match_id: int) -> Row:
        port, proc = self.start_node(kind)
        pool = await open_pool(self.database_url, min_size=1, max_size=2, name="bench")
        redis = redis_client(self.endpoints.redis_url)
        relay = Relay(pool, self.database_url, redis, Keys(self.prefix), poll_interval=0.5)
        stop = asyncio.Event()
        relay_task = asyncio.create_task(relay.run(stop))
        gens: list[subprocess.Popen[str]] = []
        try:
            async with pool.connection() as conn:
                cur = await conn.execute("SELECT seq FROM matches WHERE id = %s", (match_id,))
                row = await cur.fetchone()
                assert row is not None
                start_seq = int(row["seq"])
            await asyncio.sleep(1.0)
            before = rss_bytes(proc.pid)
            started = time.monotonic()
            gens = await asyncio.to_thread(self.generators, port, match_id, start_seq)
            connect_s = time.monotonic() - started
            await asyncio.sleep(2.0)  # settle: every handshake done, buffers allocated
            after = rss_bytes(proc.pid)
            async with pool.connection() as conn:
                await apply_change(
                    conn,
                    match_id,
                    MatchPatch(source="bench", home_score=(start_seq + 1) % 999, away_score=0),
                )
            for gen in gens:
                assert gen.stdin is not None
                gen.stdin.write(f"final {start_seq + 1}\n")
                gen.stdin.flush()
            reports = [
                orjson.loads(await asyncio.to_thread(gen.stdout.readline))  # type: ignore[union-attr]
                for gen in gens
            ]
        finally:
            for gen in gens:
                gen.kill()
                gen.wait()
            stop.set()
            await relay_task
            await pool.close()
            await redis.aclose()
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        latencies = sorted(x for r in reports for x in r["latencies_us"])

        def at(q: float) -> float:
            return float(latencies[min(len(latencies) - 1, int(len(latencies) * q))]) / 1000

        return Row(
            kind=kind,
            clients=self.args.clients,
            rss_per_conn=(after - before) / self.args.clients,
            connect_s=connect_s,
            p50_ms=at(0.5) if latencies else float("nan"),
            p99_ms=at(0.99) if latencies else float("nan"),
            max_ms=latencies[-1] / 1000 if latencies else float("nan"),
            delivered=sum(int(r["deliveries"]) for r in reports),
            closed=sum(int(r["closed"]) for r in reports),
        )


def table(rows: list[Row], args: argparse.Namespace, load: tuple[float, float, float]) -> str:
    lines = [
        f"{args.clients} idle subscribers on ONE node, {args.generators} load generators; "
        f"{os.cpu_count()} CPUs; load average before the run {load[0]:.2f} {load[1]:.2f} "
        f"{load[2]:.2f}",
        "",
        f"{'':20}{'RSS/conn KiB':>13}{'connect s':>11}{'conn/s':>8}"
        f"{'1 change p50 ms':>17}{'p99 ms':>8}{'max ms':>8}{'delivered':>11}{'closed':>8}",
    ]
    for r in rows:
        lines.append(
            f"{LABELS[r.kind]:20}{r.rss_per_conn / 1024:>13.1f}{r.connect_s:>11.1f}"
            f"{r.clients / r.connect_s:>8.0f}{r.p50_ms:>17.1f}{r.p99_ms:>8.1f}{r.max_ms:>8.1f}"
            f"{r.delivered:>11}{r.closed:>8}"
        )
    if rows and rows[0].kind == "livescore":
        lines.append(
            f"\ntarget: RSS per idle connection <= 12 KiB ({rows[0].rss_per_conn / 1024:.1f})"
        )
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> None:
    load = os.getloadavg()
    bench = Connections(args)
    bench.create_database()
    try:
        match_id = await bench.hot_match()
        rows = [await bench.run(kind, match_id) for kind in args.kinds.split(",")]
    finally:
        bench.drop_database()
    print(table(rows, args, load))


if __name__ == "__main__":
    raise_file_limit()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50_000)
    parser.add_argument("--generators", type=int, default=4, help="load generator processes")
    parser.add_argument("--kinds", default="livescore,floor", help="livescore and/or floor")
    parser.add_argument("--logs", default=str(ROOT / "bench" / "results" / "fanout-logs"))
    asyncio.run(main(parser.parse_args()))
