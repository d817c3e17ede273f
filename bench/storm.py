"""Reconnect-storm benchmark: an edge node dies, its clients all resume on another.

    .venv/bin/python bench/storm.py --clients 10000

For each round (the ring on, ``LIVESCORE_WS_RING`` default; then the ring off,
``LIVESCORE_WS_RING=0``), in the same run:

* two edge nodes, A and B (``livescore serve``, one worker each), on a
  database and Redis prefix of their own, with the real relay (in this
  process) publishing what a writer commits through ``apply_change`` at
  ``--rate`` changes per second, all the time;
* ``--clients`` WebSocket clients, held by ``--generators`` load-generator
  processes (``bench/stormgen.py``), subscribed to ONE hot match on node A;
* A gets SIGKILL. Every client sees its connection drop and at once
  reconnects to B with ``since`` = the last seq it got.

It prints, per round:

* caught up p50/p99/max: seconds from the kill until the client was resumed
  on B and had every change up to the match's seq at the kill;
* PostgreSQL transactions per reconnecting client: ``xact_commit`` of the bench
  database (``pg_stat_database``) over the storm window, minus what the writer
  and the relay commit anyway (their rate is measured over a window of the
  same length before the kill), divided by the clients; and B's own count of
  the hub's database reads (``livescore_ws_snapshot_reads_total``, joins by
  source);
* the longest event-loop stall on B from the kill until a few seconds after
  the last client came back, so the garbage collection that follows a burst
  of connections is included (``livescore_event_loop_stall_max_seconds``, the
  longest of the last 10 s by the edge's probe, which sleeps 10 ms and records
  how late it woke: B is scraped every half second and the largest reading
  kept), how many wake-ups were over 100 ms late, and likewise the longest
  garbage-collector pause;
* lost and duplicated seqs (must be 0), resets (a fresh snapshot instead of
  the replay) and clients that did not make it.

Targets on this machine (2 cores): <= 0.01 PostgreSQL transactions per
reconnecting client, p99 caught up <= 3 s, no stall over 100 ms, 0 lost, 0
duplicated. The floor row is the same storm against ``bench/storm_floor_edge.py``
(the edge's own way in: Sanic's HTTP server, the edge's handshake and its
hand-over of the socket to a lean protocol, then canned answers, nothing
else): what accepting that many reconnections costs on this machine.

Uses DATABASE_URL / REDIS_URL when set, else the embedded servers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import harness
import orjson
import psycopg
from harness import PYTHON, ROOT

from livescore.keys import Keys
from livescore.model import MatchPatch
from store.db import connect
from store.writes import apply_change

#: Seconds every client has to get back to B (the generators keep retrying that long).
BACK_WITHIN = 300.0


def scrape(port: int, *, within: float = 120.0) -> dict[str, float]:
    """A node's /metrics as {series: value} (labels kept in the name); a node too busy
    to answer (its accept queue full during the storm) is asked again."""
    deadline = time.monotonic() + within
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
                body = response.read().decode()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    out: dict[str, float] = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                continue
    return out


class Peaks:
    """The largest reading of some gauges over a series of scrapes."""

    def __init__(self, *series: str) -> None:
        self.peak = dict.fromkeys(series, 0.0)

    def update(self, seen: dict[str, float]) -> None:
        for name, value in self.peak.items():
            self.peak[name] = max(value, seen.get(name, 0.0))


@dataclass
class Result:
    name: str
    clients: int
    p50: float = float("nan")
    p99: float = float("nan")
    worst: float = float("nan")
    not_caught_up: int = 0
    tx_per_client: float = float("nan")
    storm_tx: float = float("nan")
    raw_tx: int = 0
    baseline_tx_per_s: float = float("nan")
    window_s: float = 0.0
    hub_reads: float = float("nan")
    joins_memory: float = float("nan")
    joins_database: float = float("nan")
    stall_ms: float = float("nan")
    stalls_over_100ms: float = float("nan")
    gc_ms: float = float("nan")
    cpu_ms_per_client: float = float("nan")
    #: of which in the kernel (system time: mostly the sockets' system calls)
    cpu_sys_ms_per_client: float = float("nan")
    load: float = float("nan")
    lost: int = 0
    duplicated: int = 0
    resets: int = 0
    failed: int = 0
    retries: int = 0
    refused: int = 0
    notes: list[str] = field(default_factory=list)


class Writer:
    """Commits one change every 1/rate seconds to the hot match while running."""

    def __init__(self, database_url: str, match_id: int, rate: float) -> None:
        self.database_url = database_url
        self.match_id = match_id
        self.rate = rate
        self.seq = 0
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.run())

    async def run(self) -> None:
        conn = await connect(self.database_url)
        async with conn:
            started, n = time.monotonic(), 0
            while not self.stop.is_set():
                n += 1
                await asyncio.sleep(max(0.0, started + n / self.rate - time.monotonic()))
                changes = await apply_change(
                    conn,
                    self.match_id,
                    lambda state: MatchPatch(
                        source="bench",
                        home_score=(state.home_score + 1) % 999,
                        away_score=0,
                    ),
                )
                if changes:
                    self.seq = changes[-1].seq

    async def finish(self) -> int:
        self.stop.set()
        if self.task is not None:
            await self.task
        return self.seq


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.scratch = harness.Scratch("storm")
        self.logs = harness.logs_dir(args.logs)

    def xact_commit(self) -> int:
        """Transactions committed in the bench database (asked from the admin database,
        so the asking is not counted)."""
        scratch = self.scratch
        with psycopg.connect(scratch.endpoints.database_url, autocommit=True) as admin:
            row = admin.execute(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (scratch.dbname,)
            ).fetchone()
        assert row is not None
        return int(row[0])

    def start_node(
        self, name: str, extra: dict[str, str], *, floor: bool = False
    ) -> tuple[int, subprocess.Popen[bytes]]:
        port = harness.free_port()
        scratch = self.scratch
        kind = "storm_floor_edge" if floor else "livescore"
        command = harness.edge_command(
            port, kind, scratch.redis_url, Keys(scratch.prefix).changes_channel
        )
        env = scratch.env(LIVESCORE_NODE_ID=f"storm-{name}", **extra)
        proc = harness.spawn(command, env, self.logs / f"{name}.log")
        harness.wait_healthy(port, proc, f"node {name} (log: {self.logs}/{name}.log)")
        return port, proc

    def start_generators(
        self, a: int, b: int, match_id: int, start_seq: int
    ) -> list[subprocess.Popen[str]]:
        commands = []
        for count in harness.shares(self.args.clients, self.args.generators):
            command = [
                PYTHON, str(ROOT / "bench" / "stormgen.py"), "--a", f"127.0.0.1:{a}",
                "--b", f"127.0.0.1:{b}", "--clients", str(count), "--match", str(match_id),
                "--start-seq", str(start_seq), "--window", str(BACK_WITHIN),
                "--concurrency", str(self.args.concurrency),
            ]  # fmt: skip
            commands.append(command)
        return harness.start_generators(commands, "storm generator")

    def profile(self, key: str, pid: int) -> subprocess.Popen[bytes] | None:
        """With ``--profile DIR``: py-spy samples B (``pid``) from the kill until every
        client is back, into ``DIR/<round>.txt`` (collapsed stacks: ``--format raw``;
        wall-clock samples of the busy thread); with ``--profiler perf``, ``perf record``
        (CPU samples, the kernel's included) into ``DIR/<round>.perf``."""
        if not self.args.profile:
            return None
        out = Path(self.args.profile)
        out.mkdir(parents=True, exist_ok=True)
        command = [
            str(Path(PYTHON).parent / "py-spy"), "record", "--pid", str(pid), "--rate", "250",
            "--nonblocking", "--format", "raw", "-o", str(out / f"{key}.txt"),
        ]  # fmt: skip
        if self.args.profiler == "perf":
            command = ["perf", "record", "-F", "999", "-g", "-p", str(pid),
                       "-o", str(out / f"{key}.perf")]  # fmt: skip
        spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # attached before the kill
        return spy

    async def round(self, key: str, name: str, match_id: int, ring: str | None) -> Result:
        args = self.args
        floor = ring is None
        extra = {} if ring is None else {"LIVESCORE_WS_RING": ring}
        result = Result(name, args.clients)
        a_port, a = self.start_node(f"{key}-A", extra)
        try:
            b_port, b = self.start_node(f"{key}-B", extra, floor=floor)
        except BaseException:  # A would outlive the bench
            harness.stop_all([a])
            raise
        writer = Writer(self.scratch.database_url, match_id, args.rate)
        gens: list[subprocess.Popen[str]] = []
        reports: list[dict[str, object]] = []
        peaks = Peaks("livescore_event_loop_stall_max_seconds", "livescore_gc_pause_max_seconds")
        try:
            async with self.scratch.relaying() as pool:
                writer.seq = await harness.match_seq(pool, match_id)
                try:
                    gens = await asyncio.to_thread(self.start_generators, a_port, b_port,
                                                   match_id, writer.seq)  # fmt: skip
                    writer.start()
                    await asyncio.sleep(2.0)
                    # B's startup is out of the stall window before the storm begins
                    quiet_by = time.monotonic() + 15
                    while time.monotonic() < quiet_by:
                        seen = await asyncio.to_thread(scrape, b_port)
                        if seen.get("livescore_event_loop_stall_max_seconds", 0) < 0.05:
                            break
                        await asyncio.sleep(1.0)
                    # the writer's and the relay's own transactions: a window like the storm's
                    window = args.window
                    x0, t0 = await asyncio.to_thread(self.xact_commit), time.monotonic()
                    await asyncio.sleep(window)
                    x1, t1 = await asyncio.to_thread(self.xact_commit), time.monotonic()
                    baseline = (x1 - x0) / (t1 - t0)
                    before = await asyncio.to_thread(scrape, b_port)
                    result.load = os.getloadavg()[0]
                    target = writer.seq
                    killed_at = time.time()
                    xk, tk = await asyncio.to_thread(self.xact_commit), time.monotonic()
                    spy = self.profile(key, b.pid)
                    cpu_before = harness.cpu_times(b.pid)
                    os.kill(a.pid, signal.SIGKILL)
                    a.wait()
                    # every client back (B's connection count), then the GC after the burst;
                    # the 10-second peaks of every reading on the way
                    deadline = time.monotonic() + BACK_WITHIN
                    while time.monotonic() < deadline:
                        await asyncio.sleep(0.5)
                        seen = await asyncio.to_thread(scrape, b_port)
                        peaks.update(seen)
                        if seen.get("livescore_ws_connections", 0) >= args.clients:
                            break
                    cpu_after = harness.cpu_times(b.pid)
                    cpu_sys = cpu_after[1] - cpu_before[1]
                    cpu_storm = cpu_after[0] - cpu_before[0] + cpu_sys
                    if spy is not None:
                        spy.send_signal(signal.SIGINT)  # py-spy writes its profile and ends
                        await asyncio.to_thread(spy.wait)
                    await asyncio.sleep(3.0)
                    after = await asyncio.to_thread(scrape, b_port)
                    peaks.update(after)
                    # the window must be the storm's length at least, and the stats flushed
                    await asyncio.sleep(max(0.0, tk + window - time.monotonic()) + 2.0)
                    x2, t2 = await asyncio.to_thread(self.xact_commit), time.monotonic()
                    final = await writer.finish()
                    harness.tell(gens, f"target {target} {killed_at} {final}")
                    for gen in gens:
                        assert gen.stdout is not None
                        reports.append(orjson.loads(await asyncio.to_thread(gen.stdout.readline)))
                finally:
                    await writer.finish()
                    harness.kill_all(gens)
        finally:
            harness.stop_all((a, b))
        caught = [float(x) for r in reports for x in r["caught_up_s"]]  # type: ignore[attr-defined]
        result.p50, result.p99 = harness.percentile(caught, 0.5), harness.percentile(caught, 0.99)
        result.worst = max(caught) if caught else float("nan")
        result.not_caught_up = sum(int(r["not_caught_up"]) for r in reports)  # type: ignore[call-overload]
        result.lost = sum(int(r["lost"]) for r in reports)  # type: ignore[call-overload]
        result.duplicated = sum(int(r["duplicated"]) for r in reports)  # type: ignore[call-overload]
        result.resets = sum(int(r["resets"]) for r in reports)  # type: ignore[call-overload]
        result.failed = sum(int(r["failed"]) for r in reports)  # type: ignore[call-overload]
        result.retries = sum(int(r["retries"]) for r in reports)  # type: ignore[call-overload]
        result.refused = sum(int(r["refused"]) for r in reports)  # type: ignore[call-overload]
        result.cpu_ms_per_client = cpu_storm / args.clients * 1000
        result.cpu_sys_ms_per_client = cpu_sys / args.clients * 1000
        result.raw_tx = x2 - xk
        result.window_s = t2 - tk
        result.baseline_tx_per_s = baseline
        result.storm_tx = result.raw_tx - baseline * result.window_s
        result.tx_per_client = result.storm_tx / args.clients
        result.stall_ms = peaks.peak["livescore_event_loop_stall_max_seconds"] * 1000
        if not floor:

            def delta(series: str) -> float:
                return after.get(series, 0.0) - before.get(series, 0.0)

            result.hub_reads = delta("livescore_ws_snapshot_reads_total")
            result.joins_memory = delta('livescore_ws_joins_total{source="memory"}')
            result.joins_database = delta('livescore_ws_joins_total{source="database"}')
            result.gc_ms = peaks.peak["livescore_gc_pause_max_seconds"] * 1000
            over = 'livescore_event_loop_stall_seconds_bucket{le="0.1"}'
            total = "livescore_event_loop_stall_seconds_count"
            result.stalls_over_100ms = delta(total) - delta(over)
        return result


def table(results: list[Result], args: argparse.Namespace) -> str:
    lines = [
        f"{args.clients} clients on one match on node A, {args.rate:g} changes/s throughout; "
        f"A gets SIGKILL, every client resumes on node B with since; {os.cpu_count()} CPUs "
        f"shared with PostgreSQL, Redis and {args.generators} load generators",
        "",
        f"{'':24}{'caught up s':>20}{'PG tx':>9}{'hub':>6}{'joins':>13}{'stall':>8}"
        f"{'>100ms':>7}{'GC':>7}{'B CPU':>8}{'lost':>9}{'dup':>5}{'reset':>6}{'missing':>8}",
        f"{'':24}{'p50':>6}{'p99':>7}{'max':>7}{'/client':>9}{'reads':>6}{'mem/db':>13}"
        f"{'max ms':>8}{'':>7}{'max ms':>7}{'ms/cl':>8}",
    ]
    for r in results:
        joins = "-" if r.joins_memory != r.joins_memory else (
            f"{r.joins_memory:.0f}/{r.joins_database:.0f}")  # fmt: skip
        reads = "-" if r.hub_reads != r.hub_reads else f"{r.hub_reads:.0f}"
        stall = "-" if r.stall_ms != r.stall_ms else f"{r.stall_ms:.0f}"
        over = "-" if r.stalls_over_100ms != r.stalls_over_100ms else f"{r.stalls_over_100ms:.0f}"
        gc_ms = "-" if r.gc_ms != r.gc_ms else f"{r.gc_ms:.0f}"
        floor = r.hub_reads != r.hub_reads
        tx = f"{'-':>9}" if floor else f"{r.tx_per_client:>9.4f}"
        lost = f"{'-':>9}" if floor else f"{r.lost:>9}"
        lines.append(
            f"{r.name:24}{r.p50:>6.2f}{r.p99:>7.2f}{r.worst:>7.2f}{tx}"
            f"{reads:>6}{joins:>13}{stall:>8}{over:>7}{gc_ms:>7}{r.cpu_ms_per_client:>8.2f}"
            f"{lost}{r.duplicated:>5}"
            f"{r.resets:>6}{r.not_caught_up + r.failed:>8}"
        )
    lines.append("")
    for r in results:
        retried = (
            f"; {r.retries} reconnects tried again ({r.refused} refused), "
            f"{r.failed} clients not back within {BACK_WITHIN:g}s"
        )
        if r.hub_reads != r.hub_reads:
            lines.append(
                f"{r.name}: the edge's handshake and canned answers on B, nothing else (no "
                f"replay: its lost and missing columns mean nothing); B CPU "
                f"{r.cpu_ms_per_client:.3f} ms/client, {r.cpu_sys_ms_per_client:.3f} of it in "
                f"the kernel; load average {r.load:.1f}" + retried
            )
            continue
        lines.append(
            f"{r.name}: {r.raw_tx} transactions in the {r.window_s:.1f}s storm window, "
            f"{r.baseline_tx_per_s:.1f}/s committed anyway (writer, relay): "
            f"{r.storm_tx:.0f} for the storm; B CPU {r.cpu_ms_per_client:.3f} ms/client, "
            f"{r.cpu_sys_ms_per_client:.3f} of it in the kernel; load average {r.load:.1f} "
            "at the kill" + retried
        )
    lines.append(
        "targets: PG tx/client <= 0.01, p99 caught up <= 3 s, stall <= 100 ms, 0 lost, 0 dup"
    )
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> None:
    bench = Bench(args)
    async with harness.scratch_with_match(bench.scratch, "Storm Home", "Storm Away") as match_id:
        known: dict[str, tuple[str, str | None]] = {
            "ring": ("ring on (1000)", "1000"),
            "noring": ("ring off (RING=0)", "0"),
            "floor": ("floor: bare handshakes", None),
        }
        rounds = [(key, *known[key]) for key in args.rounds.split(",")]
        results = []
        for key, name, ring in rounds:
            results.append(await bench.round(key, name, match_id, ring))
            print(table(results[-1:], args), "\n", flush=True)  # kept if a later round fails
    print(table(results, args))


if __name__ == "__main__":
    harness.interrupt_on_sigterm()
    parser = harness.fanout_parser(__doc__)
    parser.add_argument(
        "--concurrency", type=int, default=64, help="connects in flight per generator"
    )
    parser.add_argument(
        "--window", type=float, default=15.0, help="seconds of each PostgreSQL counting window"
    )
    parser.add_argument(
        "--rounds", default="ring,noring,floor", help="any of ring, noring, floor, in order"
    )
    parser.add_argument(
        "--profile", default="", help="py-spy B during each storm into this directory"
    )
    parser.add_argument("--profiler", choices=("py-spy", "perf"), default="py-spy")
    parser.add_argument("--logs", default=str(ROOT / "bench" / "results" / "storm-logs"))
    asyncio.run(main(parser.parse_args()))
