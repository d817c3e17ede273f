"""Many idle WebSocket connections on ONE edge node: what each costs, how fast they
come, how fast one change reaches them all (issue 18, lean connections).

    .venv/bin/python bench/connections.py --clients 50000

For each implementation (``livescore serve``; ``bench/floor_edge.py``, the
framework-free floor of ``bench/fanout.py``), in the same run: one node,
``--clients`` subscribers to one match from ``--generators`` load-generator
processes (``bench/loadgen.py``), each connecting from its own loopback
address (127.0.0.2, .3, ...: one source address has about 28,000 ephemeral
ports towards one node), 64 handshakes in flight in all. It prints:

* RSS per connection: the node's RSS (summed over its processes) once every
  client subscribed (and 2 s of settling) minus its RSS before, divided by
  the clients;
* connect time: from starting the generators until every client is
  subscribed (handshake, welcome, subscribe, subscribed);
* one change's delivery: ONE change written through ``apply_change`` and
  published by the real relay; commit-to-client latency p50/p99/max over
  every client, and how many got it.

One process holds at most its open-file limit of sockets. It is raised for
this process and its children (``resource.setrlimit``) as far as the
machine allows; where that is below ``--clients`` (here: 20,000, and even
root may not raise it), the livescore node runs as many worker processes
(``livescore serve --workers``) and the load as many generators as keep
each under 60% of it, and the single-process floor is skipped with a line
saying so.

Uses DATABASE_URL / REDIS_URL when set, else the embedded servers; a scratch
database and Redis prefix, dropped at the end (``harness.Scratch``).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import resource
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
from harness import (
    PYTHON,
    ROOT,
    Scratch,
    edge_command,
    free_port,
    interrupt_on_sigterm,
    kill_all,
    match_seq,
    percentile,
    rss_bytes,
    shares,
    spawn,
    start_generators,
    stop_all,
    tell,
    wait_healthy,
)

from livescore.keys import Keys
from livescore.model import MatchPatch
from store.writes import apply_change

#: File descriptors asked for (the node and each generator hold one per socket).
FILES = 200_000
#: Handshakes in flight over all generators: well under the node's listen backlog, so
#: the connect time measures the node, not SYN retransmits of an overflowing queue.
IN_FLIGHT = 64
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
    """Open files for this process and its children: FILES (root may pass the hard
    limit), else as far as the hard limit goes."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(hard, FILES)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def open_files() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def needed(sockets: int) -> int:
    """Processes to hold ``sockets`` with room to spare under the open-file limit."""
    return max(1, math.ceil(sockets / (open_files() * 0.6)))


def tree(pid: int) -> list[int]:
    """``pid`` and every process under it (Sanic's worker processes)."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    return [pid, *(p for c in children for p in tree(c))]


def rss_of_tree(pid: int) -> int:
    return sum(rss_bytes(p) for p in tree(pid))


class Connections:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        #: worker processes of the livescore node: each holds at most ``open_files()``
        #: sockets, and Sanic's workers share the listening socket unevenly
        self.workers = args.workers or needed(args.clients)
        args.generators = args.generators or needed(args.clients)
        self.scratch = Scratch("connections")
        self.logs = Path(args.logs)
        self.logs.mkdir(parents=True, exist_ok=True)

    def start_node(self, kind: str) -> tuple[int, subprocess.Popen[bytes]]:
        scratch = self.scratch
        port = free_port()
        script = "livescore" if kind == "livescore" else f"{kind}_edge"
        channel = Keys(scratch.prefix).changes_channel
        command = edge_command(port, script, scratch.redis_url, channel)
        if kind == "livescore":
            command += ["--workers", str(self.workers)]
        log = self.logs / f"connections-{kind}.log"
        env = scratch.env(LIVESCORE_NODE_ID="bench-c")
        env["LIVESCORE_LOG_LEVEL"] = os.environ.get("BENCH_LOG_LEVEL", "WARNING")
        proc = spawn(command, env, log)
        wait_healthy(port, proc, f"{kind} node on {port} (log: {log})")
        return port, proc

    def generators(self, port: int, match_id: int, start_seq: int) -> list[subprocess.Popen[str]]:
        commands = []
        for g, count in enumerate(shares(self.args.clients, self.args.generators)):
            command = [
                PYTHON, str(ROOT / "bench" / "loadgen.py"), "--nodes", f"127.0.0.1:{port}",
                "--clients", str(count), "--match", str(match_id), "--start-seq", str(start_seq),
                "--source", f"127.0.0.{2 + g}", "--drain", "60",
                "--concurrency", str(max(1, IN_FLIGHT // self.args.generators)),
            ]  # fmt: skip
            commands.append(command)
        return start_generators(commands, "load generator")

    async def run(self, kind: str, match_id: int) -> Row:
        port, proc = self.start_node(kind)
        gens: list[subprocess.Popen[str]] = []
        try:
            async with self.scratch.relaying() as pool:
                start_seq = await match_seq(pool, match_id)
                try:
                    await asyncio.sleep(1.0)
                    before = rss_of_tree(proc.pid)
                    started = time.monotonic()
                    gens = await asyncio.to_thread(self.generators, port, match_id, start_seq)
                    connect_s = time.monotonic() - started
                    await asyncio.sleep(2.0)  # settle: every handshake done, buffers allocated
                    after = rss_of_tree(proc.pid)
                    async with pool.connection() as conn:
                        home = (start_seq + 1) % 999
                        patch = MatchPatch(source="bench", home_score=home, away_score=0)
                        await apply_change(conn, match_id, patch)
                    tell(gens, f"final {start_seq + 1}")
                    reports = [
                        orjson.loads(await asyncio.to_thread(gen.stdout.readline))  # type: ignore[union-attr]
                        for gen in gens
                    ]
                finally:
                    kill_all(gens)
        finally:
            stop_all([proc])
        latencies = sorted(x for r in reports for x in r["latencies_us"])
        return Row(
            kind=kind,
            clients=self.args.clients,
            rss_per_conn=(after - before) / self.args.clients,
            connect_s=connect_s,
            p50_ms=percentile(latencies, 0.5) / 1000,
            p99_ms=percentile(latencies, 0.99) / 1000,
            max_ms=percentile(latencies, 1.0) / 1000,
            delivered=sum(int(r["deliveries"]) for r in reports),
            closed=sum(int(r["closed"]) for r in reports),
        )


def table(
    rows: list[Row], args: argparse.Namespace, load: tuple[float, float, float], workers: int
) -> str:
    lines = [
        f"{args.clients} idle subscribers on ONE node ({workers} worker processes for "
        f"livescore), {args.generators} load generators; "
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
        kib = rows[0].rss_per_conn / 1024
        lines.append(f"\nlivescore: {kib:.1f} KiB per idle connection (target <= 12 KiB)")
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> None:
    load = os.getloadavg()
    bench = Connections(args)
    bench.scratch.create()
    try:
        match_id = await bench.scratch.hot_match("Bench Home", "Bench Away")
        rows, skipped = [], []
        limit = open_files() - 1000  # a process's own files besides the sockets
        for kind in args.kinds.split(","):
            per_process = args.clients / (bench.workers if kind == "livescore" else 1)
            per_generator = args.clients / args.generators
            if max(per_process, per_generator) > limit:
                skipped.append(
                    f"{LABELS[kind]}: skipped, {per_process:.0f} sockets in one edge process "
                    f"and {per_generator:.0f} per generator; this machine's open-file limit "
                    f"is {open_files()} (not raisable here)"
                )
                continue
            rows.append(await bench.run(kind, match_id))
    finally:
        bench.scratch.drop()
    print(table(rows, args, load, bench.workers))
    for line in skipped:
        print(line)


if __name__ == "__main__":
    interrupt_on_sigterm()
    raise_file_limit()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50_000)
    parser.add_argument(
        "--generators", type=int, default=0, help="load generator processes (0: as needed)"
    )
    parser.add_argument("--kinds", default="livescore,floor", help="livescore and/or floor")
    parser.add_argument(
        "--workers", type=int, default=0, help="livescore worker processes (0: as needed)"
    )
    parser.add_argument("--logs", default=str(ROOT / "bench" / "results" / "fanout-logs"))
    asyncio.run(main(parser.parse_args()))
