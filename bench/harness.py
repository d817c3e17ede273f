"""What the benchmarks in bench/ share: the scratch database and Redis prefix,
starting and stopping processes, reading their CPU and memory, percentiles, and
the raw-socket WebSocket client of the load generators.

Coordinators (``fanout.py``, ``storm.py``, ``ingest.py``) and the load
generators (``loadgen.py``, ``stormgen.py``) import it as ``harness`` (bench/ is
the directory of the script that runs). A generator holds thousands of sockets
and needs only the client part, so this module imports the project's own
packages (the store, the relay) inside the functions that use them, never at
the top.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import resource
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from store.db import Pool

PYTHON = sys.executable
LIVESCORE = str(Path(PYTHON).with_name("livescore"))
TICKS = os.sysconf("SC_CLK_TCK")


# -- this machine ----------------------------------------------------------------------------


def lift_fd_limit() -> None:
    """Open files up to the hard limit (a bench process holds thousands of sockets)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS  # utime, stime


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, seconds."""
    return sum(cpu_times(pid))


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``: the value at rank ``int(n * q)``."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


# -- the scratch database and Redis prefix -----------------------------------------------------


class Scratch:
    """A database and Redis prefix of the bench's own on the configured servers
    (DATABASE_URL / REDIS_URL when set, else the embedded ones); ``drop()`` at the end."""

    def __init__(self, name: str, *, dbname: str | None = None) -> None:
        from livescore.config import load_settings
        from livescore.runtime import resolve

        self.endpoints = resolve(load_settings())
        self.dbname = dbname or f"bench_{name}_{secrets.token_hex(3)}"
        self.prefix = f"bench-{name}-{secrets.token_hex(3)}"
        self.database_url = ""

    @property
    def redis_url(self) -> str:
        return self.endpoints.redis_url

    def create(self) -> str:
        """Create the database (empty); its URL."""
        from store import admin

        self.database_url = admin.create_database(self.endpoints.database_url, self.dbname)
        return self.database_url

    def drop(self) -> None:
        from store import admin

        admin.drop_database(self.endpoints.database_url, self.dbname)

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a ``livescore`` process on the scratch database and
        prefix, the per-address limits lifted (every bench socket is 127.0.0.1's)."""
        from store.admin import as_url

        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
        env.update(
            DATABASE_URL=as_url(self.database_url),
            REDIS_URL=self.redis_url,
            LIVESCORE_REDIS_PREFIX=self.prefix,
            LIVESCORE_RATE_LIMIT="100000000/60",
            LIVESCORE_WS_UPGRADE_RATE="100000000/60",
            LIVESCORE_WS_MAX_PER_ADDRESS="10000000",
            LIVESCORE_LOG_LEVEL="WARNING",
            **extra,
        )
        return env

    async def hot_match(self, home: str, away: str) -> int:
        """Migrate the database and create one match between two new teams; its id."""
        from livescore import clock
        from store.db import connect
        from store.matches import NewMatch, create_match
        from store.migrate import migrate
        from store.reference import get_or_create_team

        conn = await connect(self.database_url)
        async with conn:
            await migrate(conn)
            home_id = await get_or_create_team(conn, home)
            away_id = await get_or_create_team(conn, away)
            match = await create_match(conn, NewMatch(home_id, away_id, clock.now()))
            return int(match["id"])

    @asynccontextmanager
    async def relaying(self) -> AsyncIterator[Pool]:
        """The real relay running in this process (publishing what is committed), and
        a small pool on the scratch database for the bench's own writes."""
        from livescore.keys import Keys
        from livescore.runtime import redis_client
        from pipeline.relay import Relay
        from store.db import open_pool

        pool = await open_pool(self.database_url, min_size=1, max_size=4, name="bench")
        redis = redis_client(self.redis_url)
        relay = Relay(pool, self.database_url, redis, Keys(self.prefix), poll_interval=0.5)
        stop = asyncio.Event()
        relay_task = asyncio.create_task(relay.run(stop))
        try:
            yield pool
        finally:
            stop.set()
            await relay_task
            await pool.close()
            await redis.aclose()


@asynccontextmanager
async def scratch_with_match(scratch: Scratch, home: str, away: str) -> AsyncIterator[int]:
    """The scratch database created with one match (its id), dropped at the end."""
    scratch.create()
    try:
        yield await scratch.hot_match(home, away)
    finally:
        scratch.drop()


async def match_seq(pool: Pool, match_id: int) -> int:
    """The match's seq (its last change) now."""
    from store.matches import get_match

    async with pool.connection() as conn:
        return int((await get_match(conn, match_id))["seq"])


# -- processes ---------------------------------------------------------------------------------


def interrupt_on_sigterm() -> None:
    """SIGTERM becomes KeyboardInterrupt, as Ctrl-C: a bench ended with ``kill`` or
    ``pkill`` runs the same ``finally`` blocks that stop its nodes, workers and
    generators and drop its scratch database (SIGTERM's default ends the process at
    once and its children outlive it). First thing in a bench's main; the processes
    it starts exec a fresh interpreter and keep SIGTERM's default."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, interrupt)


def spawn(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start a server process, its output into ``log``."""
    out = log.open("wb")
    return subprocess.Popen(command, env=env, stdout=out, stderr=out)


def wait_healthy(
    port: int, proc: subprocess.Popen[bytes], what: str, *, within: float = 60.0
) -> None:
    """Until ``GET /health`` on ``port`` answers (RuntimeError if ``proc`` exits first)."""
    deadline = time.monotonic() + within
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited; see its log")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} never got healthy") from None
            time.sleep(0.2)


def edge_command(port: int, kind: str, redis_url: str, channel: str) -> list[str]:
    """The command line of an edge node: ``livescore`` (``livescore serve``, one
    worker) or a bench edge script (``bench/<kind>.py --port --redis --channel``)."""
    if kind == "livescore":
        return [LIVESCORE, "serve", "--host", "127.0.0.1", "--port", str(port)]
    script = ROOT / "bench" / f"{kind}.py"
    return [PYTHON, str(script), "--port", str(port), "--redis", redis_url, "--channel", channel]


def shares(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` counts (the last takes the remainder)."""
    per = total // parts
    return [per] * (parts - 1) + [total - per * (parts - 1)]


def start_generators(commands: list[list[str]], what: str) -> list[subprocess.Popen[str]]:
    """Start load generators and wait for each one's ``ready N`` line."""
    gens = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for command in commands
    ]
    for gen in gens:
        assert gen.stdout is not None
        line = gen.stdout.readline().strip()
        if not line.startswith("ready"):
            raise RuntimeError(f"{what}: {line or 'exited'}")
    return gens


def tell(gens: list[subprocess.Popen[str]], line: str) -> None:
    for gen in gens:
        assert gen.stdin is not None
        gen.stdin.write(line + "\n")
        gen.stdin.flush()


def kill_all(gens: Sequence[subprocess.Popen[Any]]) -> None:
    for gen in gens:
        gen.kill()
        gen.wait()


def stop_all(procs: Sequence[subprocess.Popen[Any]]) -> None:
    """SIGTERM every process still running, then wait (SIGKILL after 15 s)."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def fanout_parser(doc: str) -> argparse.ArgumentParser:
    """The command line of a bench with subscribers on one hot match (its first
    paragraph of ``doc`` as description): ``--clients --rate --generators``; the
    fd limit lifted."""
    lift_fd_limit()
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=2.0, help="changes per second")
    parser.add_argument("--generators", type=int, default=2, help="load generator processes")
    return parser


def bench_edge_args() -> argparse.Namespace:
    """The command line of a bench edge (``--port --redis --channel``), the fd limit lifted."""
    lift_fd_limit()
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--channel", required=True)
    return parser.parse_args()


#: The listen backlog of the bench edges: the edge's own (``edge.app.LISTEN_BACKLOG``).
LISTEN_BACKLOG = 4096


def run_bench_edge(build: Any, protocol: Any = None) -> None:
    """A bench edge's main: ``build(redis_url, channel)`` served on ``--port`` (with
    ``protocol`` as each connection's first protocol, when given, as the edge's
    ``framework.Door``)."""
    args = bench_edge_args()
    serve_sanic(build(args.redis, args.channel), args.port, protocol)


def logs_dir(path: str) -> Path:
    """The folder for a bench's server logs (made if missing)."""
    logs = Path(path)
    logs.mkdir(parents=True, exist_ok=True)
    return logs


def serve_sanic(app: Any, port: int, protocol: Any = None) -> None:
    """Run a bench edge's Sanic app in this process (one worker, no access log, the
    edge's listen backlog; Sanic's own protocol unless ``protocol`` is given)."""
    asyncio.set_event_loop(asyncio.new_event_loop())
    app.run(
        host="127.0.0.1",
        port=port,
        single_process=True,
        access_log=False,
        motd=False,
        backlog=LISTEN_BACKLOG,
        protocol=protocol,
    )


# -- the raw-socket WebSocket client of the load generators --------------------------------------


def masked(opcode: int, payload: bytes) -> bytes:
    """One final client frame (masked, as a client must)."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    else:
        head = bytes((0x80 | opcode, 0xFE)) + n.to_bytes(2, "big")
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + body


def upgrade_request(host: str, port: int) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


class Refused(ConnectionError):
    """The server answered the upgrade with an HTTP error (``status``, ``retry_after`` s)."""

    def __init__(self, status: int, retry_after: float | None, head: str) -> None:
        super().__init__(head)
        self.status = status
        self.retry_after = retry_after


def refusal(head: bytes) -> Refused:
    """The ``Refused`` of a non-101 answer's head."""
    text = head.decode(errors="replace")
    lines = text.split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    retry_after = None
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "retry-after":
            try:
                retry_after = float(value.strip())
            except ValueError:
                retry_after = None
    return Refused(status, retry_after, lines[0][:200])


class SeqCount:
    """Lost and duplicated seqs over a generator's clients."""

    __slots__ = ("duplicated", "lost")

    def __init__(self) -> None:
        self.duplicated = 0
        self.lost = 0

    def after(self, last: int, seq: int) -> bool:
        """``seq`` arrived after ``last``: a gap counts as lost; False for a duplicate."""
        if seq != last + 1:
            if seq <= last:
                self.duplicated += 1
                return False
            self.lost += seq - last - 1
        return True


def seq_in(data: bytes, start: int, end: int) -> int | None:
    """The ``seq`` of the frame ``data[start:end]`` (None: it has none: pong, welcome)."""
    at = data.find(b'"seq":', start, end)
    if at < 0:
        return None
    return int(data[at + 6 : data.index(b",", at)])


class RawWs(asyncio.Protocol):
    """A WebSocket client on a raw asyncio protocol: a minimal HTTP upgrade, then a
    frame parser that hands each text frame to ``on_text`` (without copying it) and
    answers pings. Subclasses say what to send once upgraded (``on_upgraded``) and
    what a refused upgrade means (``on_refused``: by default the connection is
    closed and ``ConnectionError`` raised)."""

    __slots__ = ("buf", "host", "port", "transport", "upgraded")

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.buf = bytearray()
        self.upgraded = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport
        self.transport.write(upgrade_request(self.host, self.port))  # type: ignore[union-attr]

    def on_upgraded(self) -> None:
        """The server switched protocols (send the first frame here)."""

    def on_refused(self, error: Refused) -> None:
        raise error

    def on_text(self, data: bytes, start: int, end: int, now: float) -> None:
        """One text frame: ``data[start:end]``, received at ``now`` (unix seconds)."""

    def data_received(self, data: bytes) -> None:
        now = time.time()
        if self.buf:
            data = bytes(self.buf) + data
            self.buf = bytearray()
        if not self.upgraded:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.buf += data
                return
            if not data.startswith(b"HTTP/1.1 101"):
                self.on_refused(refusal(data[:end]))
                return
            data = data[end + 4 :]
            self.upgraded = True
            self.on_upgraded()
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

    def send_json(self, payload: bytes) -> None:
        if self.transport is not None:
            self.transport.write(masked(1, payload))


def generator_parser(description: str | None = None) -> argparse.ArgumentParser:
    """A load generator's command line: ``--clients --match --start-seq`` (and its own)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--match", type=int, required=True)
    parser.add_argument("--start-seq", type=int, required=True)
    return parser


def report_and_close(report: dict[str, object], clients: Iterable[RawWs]) -> None:
    """Hand the coordinator a generator's report (one JSON line), then drop its sockets."""
    import orjson

    sys.stdout.write(orjson.dumps(report).decode() + "\n")
    sys.stdout.flush()
    for client in clients:
        if client.transport is not None:
            client.transport.abort()


def run_generator(main: Any) -> None:
    """Run a generator's ``main()`` coroutine on uvloop when installed."""
    lift_fd_limit()
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        asyncio.run(main)
        return
    uvloop.run(main)
