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
every client subscribed minus RSS before, per connection). Before the writing
starts it also measures each implementation's **idle** CPU: milliseconds per
second per node with every client subscribed and no change coming (``--idle``
seconds): what a node spends whatever the load (LiveScore's health watch and
event-loop probe, timers), which the CPU per frame includes; **net us/frame**
is the CPU per frame with that idle rate taken out over the writing window.
**1st max ms** is the slowest change's first delivery to any client of
either node: a change that was late for everyone (held up before any edge
could write it: the relay, Redis, the edges' receive) shows there; one late
only for some clients (the edge's fan-out) does not.

Uses DATABASE_URL / REDIS_URL when set, else the embedded servers; works in a
database and Redis prefix of its own, dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass

import harness
import orjson
from harness import PYTHON, ROOT

from livescore.keys import Keys
from livescore.model import MatchPatch
from store.writes import apply_change

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
    idle_ms_per_s: float = float("nan")
    net_us_per_frame: float = float("nan")
    first_max_ms: float = float("nan")


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.scratch = harness.Scratch("fanout")
        self.logs = harness.logs_dir(args.logs)

    # -- processes -----------------------------------------------------------------------

    def start_nodes(self, kind: str) -> list[tuple[int, subprocess.Popen[bytes]]]:
        scratch = self.scratch
        channel = Keys(scratch.prefix).changes_channel
        nodes = []
        for n in range(2):
            port = harness.free_port()
            if kind == "node":
                command = [
                    "node", str(NODE_EDGE / "server.js"), "--port", str(port),
                    "--redis", scratch.redis_url, "--channel", channel,
                ]  # fmt: skip
            else:
                script = "livescore" if kind == "livescore" else f"{kind}_edge"
                command = harness.edge_command(port, script, scratch.redis_url, channel)
            env = scratch.env(LIVESCORE_NODE_ID=f"bench-{n}")
            nodes.append((port, harness.spawn(command, env, self.logs / f"{kind}-{n}.log")))
        try:
            for port, proc in nodes:
                harness.wait_healthy(port, proc, f"{kind} node on {port} (logs: {self.logs})")
        except BaseException:  # none of them outlives the bench
            harness.stop_all([proc for _, proc in nodes])
            raise
        return nodes

    def start_generators(
        self, nodes: list[tuple[int, subprocess.Popen[bytes]]], match_id: int, start_seq: int
    ) -> list[subprocess.Popen[str]]:
        addresses = ",".join(f"127.0.0.1:{port}" for port, _ in nodes)
        commands = []
        for count in harness.shares(self.args.clients, self.args.generators):
            command = [
                PYTHON, str(ROOT / "bench" / "loadgen.py"), "--nodes", addresses,
                "--clients", str(count), "--match", str(match_id), "--start-seq", str(start_seq),
            ]  # fmt: skip
            commands.append(command)
        return harness.start_generators(commands, "load generator")

    # -- one round -----------------------------------------------------------------------

    async def round(self, kind: str, match_id: int) -> Result:
        args = self.args
        nodes = self.start_nodes(kind)
        pids = [proc.pid for _, proc in nodes]
        gens: list[subprocess.Popen[str]] = []
        try:
            async with self.scratch.relaying() as pool:
                start_seq = await harness.match_seq(pool, match_id)
                try:
                    await asyncio.sleep(1.0)
                    rss_before = [harness.rss_bytes(pid) for pid in pids]
                    gens = await asyncio.to_thread(
                        self.start_generators, nodes, match_id, start_seq
                    )
                    await asyncio.sleep(2.0)  # settle: every handshake done, buffers allocated
                    rss_after = [harness.rss_bytes(pid) for pid in pids]
                    idle_before = sum(harness.cpu_seconds(pid) for pid in pids)
                    await asyncio.sleep(args.idle)  # subscribed, nothing published
                    idle_cpu_per_s = (
                        sum(harness.cpu_seconds(pid) for pid in pids) - idle_before
                    ) / args.idle
                    cpu_before = sum(harness.cpu_seconds(pid) for pid in pids)
                    user_before = sum(harness.cpu_times(pid)[0] for pid in pids)
                    started = time.monotonic()
                    changes = int(args.rate * args.duration)
                    async with pool.connection() as conn:
                        for n in range(changes):
                            due = started + n / args.rate
                            await asyncio.sleep(max(0.0, due - time.monotonic()))
                            home = (start_seq + n + 1) % 999
                            patch = MatchPatch(source="bench", home_score=home, away_score=0)
                            await apply_change(conn, match_id, patch)
                    final = start_seq + changes
                    harness.tell(gens, f"final {final}")
                    reports = [
                        orjson.loads(await asyncio.to_thread(gen.stdout.readline))  # type: ignore[union-attr]
                        for gen in gens
                    ]
                    elapsed = time.monotonic() - started
                    cpu = sum(harness.cpu_seconds(pid) for pid in pids) - cpu_before
                    user = sum(harness.cpu_times(pid)[0] for pid in pids) - user_before
                    gen_cpu = sum(float(r["cpu_s"]) for r in reports)
                finally:
                    harness.kill_all(gens)
        finally:
            harness.stop_all([proc for _, proc in nodes])
        latencies = sorted(x for r in reports for x in r["latencies_us"])
        deliveries = sum(int(r["deliveries"]) for r in reports)
        per_node = args.clients / 2
        return Result(
            name=kind,
            p50_ms=harness.percentile(latencies, 0.5) / 1000,
            p99_ms=harness.percentile(latencies, 0.99) / 1000,
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
            idle_ms_per_s=idle_cpu_per_s / len(pids) * 1000,
            first_max_ms=slowest_first(reports) / 1000,
            net_us_per_frame=(cpu - idle_cpu_per_s * elapsed) / deliveries * 1e6
            if deliveries
            else float("nan"),
        )


def slowest_first(reports: list[dict[str, object]]) -> float:
    """The slowest change's first delivery to any client (us): how long the change took
    to reach the first socket of either node. A change late for every client shows
    here (it was late before any edge could write it: the relay, Redis, the edges'
    receive); a change late only for some clients does not."""
    first: dict[str, int] = {}
    for report in reports:
        for seq, latency in report.get("first_us", {}).items():  # type: ignore[attr-defined]
            first[seq] = min(latency, first.get(seq, latency))
    return float(max(first.values(), default=float("nan")))


def table(results: list[Result], args: argparse.Namespace, skipped: list[str]) -> str:
    lines = [
        f"{args.clients} subscribers on one match over 2 edge nodes, {args.rate:g} changes/s "
        f"for {args.duration:g}s; {os.cpu_count()} CPUs shared with PostgreSQL, Redis and "
        f"{args.generators} load generators",
        "",
        f"{'':22}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}{'deliv/s':>9}{'lost':>6}{'dup':>5}"
        f"{'CPU us/frame':>14}{'(user)':>8}{'RSS/conn KiB':>14}{'loadgen us/frame':>18}"
        f"{'idle ms/s':>11}{'net us/frame':>14}{'1st max ms':>12}",
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
            f"{r.loadgen_us_per_frame:>18.2f}{r.idle_ms_per_s:>11.1f}{r.net_us_per_frame:>14.2f}"
            f"{r.first_max_ms:>12.1f}" + (f"  ({r.closed} sockets closed)" if r.closed else "")
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
        hub, floor = by["livescore"], by["floor"]
        lines.append(
            f"net of each row's idle CPU: hub {hub.net_us_per_frame:.2f} us/frame, floor "
            f"{floor.net_us_per_frame:.2f} ({hub.net_us_per_frame / floor.net_us_per_frame:.2f}x)"
            f"; idle per node: hub {hub.idle_ms_per_s:.1f} ms/s, floor "
            f"{floor.idle_ms_per_s:.1f}"
            + (f", node ws {by['node'].idle_ms_per_s:.1f}" if "node" in by else "")
            + " (not a target: the targets are on the CPU per frame above)"
        )
    lines.extend(skipped)
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> None:
    bench = Bench(args)
    async with harness.scratch_with_match(bench.scratch, "Bench Home", "Bench Away") as match_id:
        results, skipped = [], []
        for kind in args.kinds.split(","):
            try:
                if kind == "node":
                    node_ready()
                results.append(await bench.round(kind, match_id))
            except Skipped as exc:
                skipped.append(str(exc))
    print(table(results, args, skipped))


if __name__ == "__main__":
    harness.interrupt_on_sigterm()
    parser = harness.fanout_parser(__doc__)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of writing")
    parser.add_argument(
        "--idle", type=float, default=5.0, help="seconds of the idle CPU window before it"
    )
    parser.add_argument(
        "--kinds",
        default="livescore,node,bare,floor",
        help="any of livescore, node, bare, floor",
    )
    parser.add_argument("--logs", default=str(ROOT / "bench" / "results" / "fanout-logs"))
    asyncio.run(main(parser.parse_args()))
