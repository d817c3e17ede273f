"""Benchmark: the edge's hot reads next to a bare Sanic route, measured in one run.

    .venv/bin/python bench/rest.py [--workers 1] [--duration 10] [--rounds 3]

Uses DATABASE_URL/REDIS_URL when set, else the embedded servers. Creates a
scratch database (migrated, seeded, dropped at the end) and a private Redis
prefix, then starts two servers with the same worker count:

* the baseline: a bare Sanic app whose one route returns a constant JSON body;
* the edge (``edge.app.serve``, what ``livescore serve`` runs) on the seeded data,
  with a rate limit high enough never to refuse (the limiter still runs).

While the load runs, a writer changes a live match's score every 100 ms
through ``apply_change`` and the pipeline's relay publishes each change, as
in production; a reader polls that match on one keep-alive connection and
checks that its seq never goes backwards and how soon each change shows.

The load generator is wrk (``apt-get install wrk``), or, without it, a lean
asyncio HTTP/1.1 client in its own process. Rounds are interleaved (bare,
list, detail, commentary, changes, competitions, health, bare, ...) and the
medians reported, with the ratios and the targets: every GET >= 0.6x the bare
route's requests/s, p99 <= 3x bare p99. Next to them, the server's CPU time
per request (every process of the server, from /proc): on a machine shared
with other work, where req/s follows the neighbours, it says what a request
costs. Each row's URL must answer 200 before the load starts. ``/health`` is
the edge's own, answered from its watch loop's background reading
(``edge.health``): the row measures what a probe costs. ``--only WORDS``
measures only the rows naming one of them (for profiling).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import cpu_seconds, free_port, interrupt_on_sigterm  # noqa: E402

from livescore.config import load_settings  # noqa: E402
from livescore.keys import Keys  # noqa: E402
from livescore.model import MatchPatch, MatchState, MatchStatus  # noqa: E402
from livescore.runtime import Endpoints, redis_client, resolve  # noqa: E402
from store.admin import create_database, drop_database  # noqa: E402
from store.db import connect, open_pool  # noqa: E402
from store.matches import MatchFilter, list_matches  # noqa: E402
from store.migrate import migrate  # noqa: E402
from store.seed import seed  # noqa: E402
from store.writes import apply_change  # noqa: E402

BARE_BODY = b'{"status":"ok","data":[1,2,3]}'
WRITE_EVERY = 0.100
TARGET_RPS = 0.6
TARGET_P99 = 3.0


# -- the two servers (run as subprocesses of this script) ---------------------------------


def bare_app() -> Any:
    from sanic import Request, Sanic
    from sanic.response import HTTPResponse, raw

    app: Sanic[Any, Any] = Sanic("bare", configure_logging=False)
    app.config.ACCESS_LOG = False

    @app.get("/")
    async def constant(request: Request) -> HTTPResponse:
        return raw(BARE_BODY, content_type="application/json")

    return app


def serve_bare(port: int, workers: int) -> None:
    """Run exactly as ``edge.app.serve`` runs the edge (one process, or an AppLoader)."""
    from sanic import Sanic
    from sanic.worker.loader import AppLoader

    if workers == 1:
        bare_app().run(host="127.0.0.1", port=port, single_process=True, access_log=False,
                       motd=False)  # fmt: skip
        return
    loader = AppLoader(factory=bare_app)
    app = loader.load()
    app.prepare(host="127.0.0.1", port=port, workers=workers, access_log=False, motd=False)
    Sanic.serve(primary=app, app_loader=loader)


def serve_edge(port: int, workers: int) -> None:
    from edge.app import serve

    endpoints = Endpoints(os.environ["BENCH_DSN"], os.environ["BENCH_REDIS"], False, False)
    serve(load_settings(), endpoints, host="127.0.0.1", port=port, workers=workers)


def log_path(port: int) -> Path:
    return Path(tempfile.gettempdir()) / f"livescore-bench-{port}.log"


def start(kind: str, port: int, workers: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log_path(port).open("wb") as log:
        # a session of its own: Sanic's worker manager SIGKILLs its whole process group
        # when a worker fails, which must not be ours
        return subprocess.Popen(
            [sys.executable, __file__, f"--serve-{kind}", str(port), "--workers", str(workers)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_ready(url: str, port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(
                f"server for {url} exited with {process.returncode}; see {log_path(port)}"
            )
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} not ready in 30 s; see {log_path(port)}")


# -- load generators -----------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    #: the server's CPU (every process of it, user + system) per request, microseconds
    cpu_us: float = 0.0


def session_cpu(session: int) -> float:
    """CPU seconds used so far by the live processes of ``session`` (a server and its
    workers: each is started in a session of its own), from /proc."""
    total = 0.0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if os.getsid(int(proc.name)) == session:
                total += cpu_seconds(int(proc.name))
        except OSError:  # ended meanwhile
            continue
    return total


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    assert match, text
    value = float(match[1])
    return {"us": value / 1000, "ms": value, "s": value * 1000}[match[2]]


def run_wrk(url: str, duration: int, connections: int, threads: int) -> Result:
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out)[1])  # type: ignore[index]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out)[1])  # type: ignore[index]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    failed = int(errors[1]) if errors else 0
    failed += sum(int(n) for n in sockets.groups()) if sockets else 0
    return Result(rps, p50, p99, failed)


def run_python(url: str, duration: int, connections: int) -> Result:
    out = subprocess.run(
        [sys.executable, __file__, "--loadgen", url, "--duration", str(duration),
         "--connections", str(connections)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    data = json.loads(out)
    return Result(data["rps"], data["p50_ms"], data["p99_ms"], data["errors"])


def loadgen(url: str, duration: int, connections: int) -> None:
    """A lean keep-alive HTTP/1.1 GET loop (the fallback when wrk is absent)."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    host_port = url.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":")
    path = "/" + url.split("//", 1)[1].split("/", 1)[1] if url.count("/") > 2 else "/"
    request = f"GET {path} HTTP/1.1\r\nHost: {host_port}\r\n\r\n".encode()
    latencies: list[float] = []
    errors = 0

    async def client(stop: float) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        while time.perf_counter() < stop:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head)[1])  # type: ignore[index]
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if not head.startswith(b"HTTP/1.1 2"):
                errors += 1
        writer.close()

    async def main() -> float:
        began = time.perf_counter()
        await asyncio.gather(*(client(began + duration) for _ in range(connections)))
        return time.perf_counter() - began

    elapsed = asyncio.run(main())
    latencies.sort()
    print(
        json.dumps(
            {
                "rps": len(latencies) / elapsed,
                "p50_ms": latencies[len(latencies) // 2] * 1000,
                "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
                "errors": errors,
            }
        )
    )


# -- writer and reader ---------------------------------------------------------------------


@dataclass
class Traffic:
    commits: dict[int, float]
    published: dict[int, float]
    polls: list[tuple[int, float]]


async def write_and_read(
    dsn: str, redis_url: str, keys: Keys, match_id: int, url: str, stop: asyncio.Event
) -> Traffic:
    from pipeline.relay import Relay

    traffic = Traffic({}, {}, [])
    pool = await open_pool(dsn, min_size=2, max_size=4)
    redis = redis_client(redis_url)
    relay = Relay(pool, dsn, redis, keys, poll_interval=1.0)

    def next_score(state: MatchState) -> MatchPatch:
        home = (state.home_score + 1) % 10
        return MatchPatch(source="bench", home_score=home, away_score=state.away_score)

    async def writer() -> None:
        async with pool.connection() as conn:
            while not stop.is_set():
                changes = await apply_change(conn, match_id, next_score)
                if changes:
                    traffic.commits[changes[-1].seq] = time.perf_counter()
                await asyncio.sleep(WRITE_EVERY)

    async def reader() -> None:
        async with httpx.AsyncClient() as http:
            while not stop.is_set():
                response = await http.get(url)
                traffic.polls.append((response.json()["data"]["seq"], time.perf_counter()))
                await asyncio.sleep(0.005)

    async def listener() -> None:
        """When each change reached Redis (what the edge nodes hear)."""
        pubsub = redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(keys.changes_channel)
        while not stop.is_set():
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
            if message is not None and message["type"] == "message":
                change = json.loads(message["data"])
                if change["matchId"] == match_id:
                    traffic.published.setdefault(change["seq"], time.perf_counter())
        await pubsub.aclose()  # type: ignore[no-untyped-call]

    relay_task = asyncio.create_task(relay.run(stop))
    try:
        await asyncio.gather(writer(), reader(), listener())
    finally:
        await relay_task
        await redis.aclose()
        await pool.close()
    return traffic


@dataclass
class Delays:
    """Milliseconds, per change: commit -> channel (relay), channel -> edge, commit -> edge."""

    relayed: list[float]
    edge: list[float]
    visible: list[float]


def reader_report(traffic: Traffic) -> tuple[bool, int, Delays]:
    seqs = [seq for seq, _ in traffic.polls]
    monotonic = all(a <= b for a, b in itertools.pairwise(seqs))
    delays = Delays([], [], [])
    for seq, committed in sorted(traffic.commits.items()):
        seen = next((t for s, t in traffic.polls if s >= seq), None)
        published = traffic.published.get(seq)
        if seen is not None:
            delays.visible.append(max(0.0, seen - committed) * 1000)
        if published is not None:
            delays.relayed.append(max(0.0, published - committed) * 1000)
        if seen is not None and published is not None:
            delays.edge.append(max(0.0, seen - published) * 1000)
    return monotonic, len(seqs), delays


def spread(values: list[float]) -> str:
    values = sorted(values)
    return (
        f"p50 {statistics.median(values):.1f} ms, p99 {values[int(len(values) * 0.99)]:.1f} ms, "
        f"max {values[-1]:.1f} ms"
    )


# -- the run -------------------------------------------------------------------------------


async def prepare(dsn: str) -> int:
    conn = await connect(dsn)
    async with conn:
        await migrate(conn)
        await seed(conn)
        live, _ = await list_matches(conn, MatchFilter(statuses=(MatchStatus.LIVE,)), limit=1)
    return int(live[0]["id"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--only",
        metavar="WORDS",
        help="comma-separated words: measure only the rows whose name has one (and bare)",
    )
    parser.add_argument("--loadgen", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--serve-edge", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loadgen:
        return loadgen(args.loadgen, args.duration, args.connections)
    if args.serve_bare:
        return serve_bare(args.serve_bare, args.workers)
    if args.serve_edge:
        return serve_edge(args.serve_edge, args.workers)
    interrupt_on_sigterm()  # the coordinator only: its --serve-* children keep Sanic's own

    settings = load_settings()
    endpoints = resolve(settings)
    dbname = f"livescore_bench_{os.getpid()}"
    dsn = create_database(endpoints.database_url, dbname)
    keys = Keys(f"bench-{secrets.token_hex(4)}")
    servers: list[subprocess.Popen[bytes]] = []
    try:
        match_id = asyncio.run(prepare(dsn))
        env = {
            **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
            "BENCH_DSN": dsn,
            "BENCH_REDIS": endpoints.redis_url,
            "LIVESCORE_REDIS_PREFIX": keys.prefix,
            "LIVESCORE_RATE_LIMIT": "1000000000/1",
            "LIVESCORE_LOG_LEVEL": "WARNING",
        }
        bare_port, edge_port = free_port(), free_port()
        servers += [start("bare", bare_port, args.workers, env)]
        servers += [start("edge", edge_port, args.workers, env)]
        wait_ready(f"http://127.0.0.1:{bare_port}/", bare_port, servers[0])
        wait_ready(f"http://127.0.0.1:{edge_port}/health", edge_port, servers[1])
        match_url = f"http://127.0.0.1:{edge_port}/api/matches/{match_id}"
        targets = {
            "bare constant JSON": f"http://127.0.0.1:{bare_port}/",
            "GET /api/matches": f"http://127.0.0.1:{edge_port}/api/matches",
            "GET /api/matches/{id}": f"http://127.0.0.1:{edge_port}/api/matches/{match_id}",
            "GET .../commentary": f"{match_url}/commentary",
            "GET .../changes?since": f"{match_url}/changes?since=0&limit=20",
            "GET /api/competitions": f"http://127.0.0.1:{edge_port}/api/competitions",
            "GET /health": f"http://127.0.0.1:{edge_port}/health",
        }
        if args.only:
            words = args.only.split(",")
            targets = {
                name: url
                for name, url in targets.items()
                if name == "bare constant JSON" or any(word in name for word in words)
            }
        for name, url in targets.items():
            answer = httpx.get(url, timeout=10)
            if answer.status_code != 200:  # a row must measure the answer, not an error
                raise SystemExit(f"{name}: {url} answered {answer.status_code}: {answer.text}")
        health = httpx.get(f"http://127.0.0.1:{edge_port}/health", timeout=10).json()
        use_wrk = shutil.which("wrk") is not None
        tool = (
            f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s"
            if use_wrk
            else f"python asyncio loadgen, {args.connections} connections, {args.duration}s"
        )

        def measure(url: str) -> Result:
            server = servers[0] if url.startswith(targets["bare constant JSON"]) else servers[1]
            cpu = session_cpu(server.pid)
            if use_wrk:
                result = run_wrk(url, args.duration, args.connections, args.threads)
            else:
                result = run_python(url, args.duration, args.connections)
            used = session_cpu(server.pid) - cpu
            return replace(result, cpu_us=used / (result.rps * args.duration) * 1e6)

        results: dict[str, list[Result]] = {name: [] for name in targets}

        async def under_writes() -> Traffic:
            stop = asyncio.Event()
            background = asyncio.create_task(
                write_and_read(dsn, endpoints.redis_url, keys, match_id, match_url, stop)
            )
            try:
                for round_no in range(args.rounds):
                    for name, url in targets.items():
                        print(f"round {round_no + 1}/{args.rounds}: {name} ...", file=sys.stderr)
                        results[name].append(await asyncio.to_thread(measure, url))
            finally:
                stop.set()
            return await background

        traffic = asyncio.run(under_writes())
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
        drop_database(endpoints.database_url, dbname)

    print(f"\nLiveScore REST benchmark: workers={args.workers}, {tool}, loopback, "
          f"{os.cpu_count()} CPUs shared by load tool and servers")  # fmt: skip
    print(f"median of {args.rounds} interleaved rounds; a score changes every 100 ms meanwhile")
    print(f"/health before the load: {health['status']}, from a reading "
          f"{health['checkedSecondsAgo']} s old (the watch loop's)\n")  # fmt: skip
    print(f"{'':24}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'req/s vs bare':>15}"
          f"{'p99 vs bare':>13}{'CPU us/req':>12}{'target':>8}")  # fmt: skip
    bare = results["bare constant JSON"]
    bare_rps = statistics.median(r.rps for r in bare)
    bare_p99 = statistics.median(r.p99_ms for r in bare)
    verdicts = []
    for name, runs in results.items():
        rps = statistics.median(r.rps for r in runs)
        p50 = statistics.median(r.p50_ms for r in runs)
        p99 = statistics.median(r.p99_ms for r in runs)
        cpu = statistics.median(r.cpu_us for r in runs)
        errors = sum(r.errors for r in runs)
        note = f"  ({errors} non-2xx/errors)" if errors else ""
        met = ""
        if name != "bare constant JSON":
            verdicts.append(rps / bare_rps >= TARGET_RPS and p99 / bare_p99 <= TARGET_P99)
            met = "met" if verdicts[-1] else "MISSED"
        print(f"{name:24}{rps:>10.0f}{p50:>9.2f}{p99:>9.2f}{rps / bare_rps:>15.2f}"
              f"{p99 / bare_p99:>13.2f}{cpu:>12.1f}{met:>8}{note}")  # fmt: skip
    monotonic, polls, delays = reader_report(traffic)
    print(f"\nwriter: {len(traffic.commits)} score changes (apply_change + relay publish)")
    if delays.relayed:
        print(f"        commit -> on the changes channel (relay): {spread(delays.relayed)}")
    print(f"reader: {polls} polls (every 5 ms, one connection); seq never went back: {monotonic}")
    if delays.visible:
        print(f"        changes seen {len(delays.visible)}/{len(traffic.commits)}")
        print(f"        channel -> served by the edge: {spread(delays.edge)}")
        print(f"        commit -> served by the edge:  {spread(delays.visible)}")
    ok = all(verdicts) and monotonic
    print(f"\ntargets (>= {TARGET_RPS}x req/s, p99 <= {TARGET_P99}x, seq monotonic): "
          + ("MET" if ok else "NOT MET"))  # fmt: skip


if __name__ == "__main__":
    main()
