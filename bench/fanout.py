"""WebSocket fan-out benchmark: LiveScore's hub against a bare Sanic broadcast.

    .venv/bin/python bench/fanout.py --clients 10000 --rate 2 --duration 30

For each implementation, in the same run and on the same load:

* two edge nodes (``livescore serve``; or ``bench/bare_edge.py``: one Redis
  subscriber, a plain ``await ws.send`` loop over the sockets; or
  ``bench/node_edge/server.js``, the original API's realtime stack: Node.js
  with the ``ws`` library, one Redis subscriber, ``for (const c of clients)
  c.send(text)``; its packages are installed into ``bench/node_edge`` on first
  use with ``npm ci``, and the row is skipped with a message when ``node`` or
  ``npm`` is missing);
* ``--clients`` WebSocket subscribers to ONE hot match, split evenly across
  the two nodes, held by ``--generators`` lean load-generator processes
  (``bench/loadgen.py``: raw sockets, parses only ``seq`` and ``ts``);
* ``--rate`` changes per second for ``--duration`` seconds written through
  the store's write path (``apply_change``), published by the real relay
  (``pipeline.relay.Relay``) running in this process.

It prints commit-to-client latency p50/p99/max (commit time = the change's
``ts``), deliveries per second, lost and duplicated messages, edge CPU
microseconds per delivered frame (utime+stime of the edge processes from
/proc over the writing window) and edge RSS per idle connection (RSS after
every client subscribed minus RSS before, per connection).

Uses DATABASE_URL / REDIS_URL when set, else the embedded servers; works in a
database and Redis prefix of its own, dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from livescore.config import load_settings  # noqa: E402
from livescore.keys import Keys  # noqa: E402
from livescore.model import MatchPatch  # noqa: E402
from livescore.runtime import redis_client, resolve  # noqa: E402
from pipeline.relay import Relay  # noqa: E402
from store import admin as store_admin  # noqa: E402
from store.admin import as_url  # noqa: E402
from store.db import connect, open_pool  # noqa: E402
from store.matches import NewMatch, create_match  # noqa: E402
from store.migrate import migrate  # noqa: E402
from store.reference import get_or_create_team  # noqa: E402
from store.writes import apply_change  # noqa: E402

PYTHON = sys.executable
NODE_EDGE = ROOT / "bench" / "node_edge"


class Skipped(Exception):
    """A row this machine cannot run (its reason is printed in its place)."""


def node_ready() -> None:
    """Make ``bench/node_edge`` runnable: node present, its packages installed."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise Skipped(
            "node ws broadcast: skipped, node/npm not installed (apt-get install nodejs npm)"
        )
    if (NODE_EDGE / "node_modules" / "ws").is_dir():
        return
    done = subprocess.run(
        ["npm", "ci", "--prefix", str(NODE_EDGE), "--no-audit", "--no-fund"],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise Skipped(f"node ws broadcast: skipped, npm ci failed: {done.stderr.strip()[-300:]}")


LIVESCORE = str(Path(PYTHON).with_name("livescore"))
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS  # utime, stime


def cpu_seconds(pid: int) -> float:
    return sum(cpu_times(pid))


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


@dataclass
class Result:
    name: str
    p50_ms: float
    p99_ms: float
    max_ms: float
    deliveries_per_s: float
    lost: int
    duplicated: int
    cpu_us_per_frame: float
    user_us_per_frame: float
    loadgen_us_per_frame: float
    rss_per_conn: float
    closed: int


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        settings = load_settings()
        self.endpoints = resolve(settings)
        self.dbname = f"bench_fanout_{secrets.token_hex(3)}"
        self.prefix = f"bench-fanout-{secrets.token_hex(3)}"
        self.database_url = ""
        self.logs = Path(args.logs)
        self.logs.mkdir(parents=True, exist_ok=True)

    # -- setup ---------------------------------------------------------------------------

    def create_database(self) -> None:
        self.database_url = store_admin.create_database(self.endpoints.database_url, self.dbname)

    def drop_database(self) -> None:
        store_admin.drop_database(self.endpoints.database_url, self.dbname)

    async def hot_match(self) -> int:
        conn = await connect(self.database_url)
        async with conn:
            await migrate(conn)
            home = await get_or_create_team(conn, "Bench Home")
            away = await get_or_create_team(conn, "Bench Away")
            from livescore import clock

            match = await create_match(conn, NewMatch(home, away, clock.now()))
            return int(match["id"])

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
        env.update(
            DATABASE_URL=as_url(self.database_url),
            REDIS_URL=self.endpoints.redis_url,
            LIVESCORE_REDIS_PREFIX=self.prefix,
            LIVESCORE_RATE_LIMIT="100000000/60",
            # every load-generator socket comes from 127.0.0.1: lift the per-address /ws limits
            LIVESCORE_WS_UPGRADE_RATE="100000000/60",
            LIVESCORE_WS_MAX_PER_ADDRESS="10000000",
            LIVESCORE_LOG_LEVEL="WARNING",
            **extra,
        )
        return env

    # -- processes -----------------------------------------------------------------------

    def start_nodes(self, kind: str) -> list[tuple[int, subprocess.Popen[bytes]]]:
        nodes = []
        for n in range(2):
            port = free_port()
            if kind == "livescore":
                command = [LIVESCORE, "serve", "--host", "127.0.0.1", "--port", str(port)]
            elif kind == "node":
                command = [
                    "node", str(NODE_EDGE / "server.js"), "--port", str(port),
                    "--redis", self.endpoints.redis_url,
                    "--channel", Keys(self.prefix).changes_channel,
                ]  # fmt: skip
            else:
                command = [
                    PYTHON, str(ROOT / "bench" / f"{kind}_edge.py"), "--port", str(port),
                    "--redis", self.endpoints.redis_url,
                    "--channel", Keys(self.prefix).changes_channel,
                ]  # fmt: skip
            log = (self.logs / f"{kind}-{n}.log").open("wb")
            proc = subprocess.Popen(
                command, env=self.env(LIVESCORE_NODE_ID=f"bench-{n}"), stdout=log, stderr=log
            )
            nodes.append((port, proc))
        for port, proc in nodes:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{kind} node on {port} exited; see {self.logs}")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{kind} node on {port} never got healthy") from None
                    time.sleep(0.2)
        return nodes

    def start_generators(
        self, nodes: list[tuple[int, subprocess.Popen[bytes]]], match_id: int, start_seq: int
    ) -> list[subprocess.Popen[str]]:
        gens = []
        per = self.args.clients // self.args.generators
        addresses = ",".join(f"127.0.0.1:{port}" for port, _ in nodes)
        for g in range(self.args.generators):
            count = per if g < self.args.generators - 1 else self.args.clients - per * g
            command = [
                PYTHON, str(ROOT / "bench" / "loadgen.py"), "--nodes", addresses,
                "--clients", str(count), "--match", str(match_id), "--start-seq", str(start_seq),
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

    # -- one round -----------------------------------------------------------------------

    async def round(self, kind: str, match_id: int) -> Result:
        args = self.args
        nodes = self.start_nodes(kind)
        pids = [proc.pid for _, proc in nodes]
        pool = await open_pool(self.database_url, min_size=1, max_size=4, name="bench")
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
            rss_before = [rss_bytes(pid) for pid in pids]
            gens = await asyncio.to_thread(self.start_generators, nodes, match_id, start_seq)
            await asyncio.sleep(2.0)  # settle: every handshake done, buffers allocated
            rss_after = [rss_bytes(pid) for pid in pids]
            cpu_before = sum(cpu_seconds(pid) for pid in pids)
            user_before = sum(cpu_times(pid)[0] for pid in pids)
            started = time.monotonic()
            changes = int(args.rate * args.duration)
            async with pool.connection() as conn:
                for n in range(changes):
                    due = started + n / args.rate
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
                    home = (start_seq + n + 1) % 999
                    await apply_change(
                        conn, match_id, MatchPatch(source="bench", home_score=home, away_score=0)
                    )
            final = start_seq + changes
            for gen in gens:
                assert gen.stdin is not None
                gen.stdin.write(f"final {final}\n")
                gen.stdin.flush()
            reports = [
                orjson.loads(await asyncio.to_thread(gen.stdout.readline))  # type: ignore[union-attr]
                for gen in gens
            ]
            elapsed = time.monotonic() - started
            cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
            user = sum(cpu_times(pid)[0] for pid in pids) - user_before
            gen_cpu = sum(float(r["cpu_s"]) for r in reports)
        finally:
            for gen in gens:
                gen.kill()
                gen.wait()
            stop.set()
            await relay_task
            await pool.close()
            await redis.aclose()
            for _, proc in nodes:
                proc.terminate()
            for _, proc in nodes:
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
        latencies = sorted(x for r in reports for x in r["latencies_us"])
        deliveries = sum(int(r["deliveries"]) for r in reports)
        per_node = args.clients / 2
        return Result(
            name=kind,
            p50_ms=latencies[len(latencies) // 2] / 1000 if latencies else float("nan"),
            p99_ms=latencies[int(len(latencies) * 0.99)] / 1000 if latencies else float("nan"),
            max_ms=latencies[-1] / 1000 if latencies else float("nan"),
            deliveries_per_s=deliveries / elapsed,
            lost=sum(int(r["lost"]) for r in reports),
            duplicated=sum(int(r["duplicated"]) for r in reports),
            cpu_us_per_frame=cpu / deliveries * 1e6 if deliveries else float("nan"),
            user_us_per_frame=user / deliveries * 1e6 if deliveries else float("nan"),
            loadgen_us_per_frame=gen_cpu / deliveries * 1e6 if deliveries else float("nan"),
            rss_per_conn=statistics.mean(
                (after - before) / per_node
                for before, after in zip(rss_before, rss_after, strict=True)
            ),
            closed=sum(int(r["closed"]) for r in reports),
        )


def table(results: list[Result], args: argparse.Namespace, skipped: list[str]) -> str:
    lines = [
        f"{args.clients} subscribers on one match over 2 edge nodes, {args.rate:g} changes/s "
        f"for {args.duration:g}s; {os.cpu_count()} CPUs shared with PostgreSQL, Redis and "
        f"{args.generators} load generators",
        "",
        f"{'':22}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}{'deliv/s':>9}{'lost':>6}{'dup':>5}"
        f"{'CPU us/frame':>14}{'(user)':>8}{'RSS/conn KiB':>14}{'loadgen us/frame':>18}",
    ]
    labels = {
        "livescore": "livescore hub",
        "bare": "bare await-send loop",
        "node": "node ws broadcast",
        "floor": "floor: bare writes",
    }
    for r in results:
        lines.append(
            f"{labels[r.name]:22}{r.p50_ms:>8.1f}{r.p99_ms:>8.1f}{r.max_ms:>8.1f}"
            f"{r.deliveries_per_s:>9.0f}{r.lost:>6}{r.duplicated:>5}{r.cpu_us_per_frame:>14.2f}"
            f"{r.user_us_per_frame:>8.2f}{r.rss_per_conn / 1024:>14.1f}"
            f"{r.loadgen_us_per_frame:>18.2f}"
            + (f"  ({r.closed} sockets closed)" if r.closed else "")
        )
    by = {r.name: r for r in results}
    if "livescore" in by and "bare" in by:
        hub, bare = by["livescore"], by["bare"]
        total = hub.cpu_us_per_frame / bare.cpu_us_per_frame
        user = hub.user_us_per_frame / bare.user_us_per_frame
        lines.append(
            f"\nCPU per delivered frame, hub / bare loop: {total:.2f}x"
            f" (user space only: {user:.2f}x)"
        )
    if "livescore" in by and "node" in by:
        hub, node = by["livescore"], by["node"]
        lines.append(
            f"hub / node ws: CPU per frame {hub.cpu_us_per_frame / node.cpu_us_per_frame:.2f}x"
            f" (target <= 1), p99 {hub.p99_ms / node.p99_ms:.2f}x (target <= 1)"
        )
    if "livescore" in by and "floor" in by:
        over = by["livescore"].cpu_us_per_frame - by["floor"].cpu_us_per_frame
        ratio = by["livescore"].cpu_us_per_frame / by["floor"].cpu_us_per_frame
        lines.append(
            f"hub CPU above the one-write-per-client floor: {over:.2f} us per frame"
            f" ({ratio:.2f}x the floor; target <= 1.15x)"
        )
    lines.extend(skipped)
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> None:
    bench = Bench(args)
    bench.create_database()
    try:
        match_id = await bench.hot_match()
        results, skipped = [], []
        for kind in args.kinds.split(","):
            try:
                if kind == "node":
                    node_ready()
                results.append(await bench.round(kind, match_id))
            except Skipped as exc:
                skipped.append(str(exc))
    finally:
        bench.drop_database()
    print(table(results, args, skipped))


if __name__ == "__main__":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=2.0, help="changes per second")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of writing")
    parser.add_argument("--generators", type=int, default=2, help="load generator processes")
    parser.add_argument(
        "--kinds",
        default="livescore,node,bare,floor",
        help="any of livescore, node, bare, floor",
    )
    parser.add_argument("--logs", default=str(ROOT / "bench" / "results" / "fanout-logs"))
    asyncio.run(main(parser.parse_args()))
