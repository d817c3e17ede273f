"""``livescore demo``: the whole system in one command.

1. A fresh database (``livescore_demo`` by default, dropped and re-created on
   the same PostgreSQL: the embedded one unless ``DATABASE_URL`` is set), so
   every run replays the matchday from the start and never touches the data
   of ``livescore db ...``; migrated and seeded.
2. Child processes, each in its own session and told to die with the demo
   (``PR_SET_PDEATHSIG``): ``livescore worker`` and two ``livescore serve``
   nodes, logging to files under ``LIVESCORE_DATA_DIR/demo``, all on the
   Redis prefix ``livescore-demo``.
3. A recorded matchday replayed in this process, every recorded time shifted
   so its first kickoff comes moments after the nodes are up
   (``pipeline.timeshift``): it shows up as today's matches on the live page.
4. ``stop()`` (Ctrl-C) terminates the children and waits for them; the
   embedded PostgreSQL and Redis keep running for the next command
   (``livescore db stop`` stops them).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO

from livescore.config import Settings, load_settings
from livescore.errors import LiveScoreError, StoreError
from livescore.runtime import Endpoints
from store.admin import create_database
from store.db import connect
from store.migrate import migrate
from store.seed import seed

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FIXTURE = ROOT / "fixtures" / "premier-league-matchday"
#: Wall seconds between the nodes being up and the first kickoff.
KICKOFF_AFTER = 20.0
HEALTH_TIMEOUT = 60.0
#: SIGTERM to SIGKILL: the worker's own grace period for running jobs is 10 s.
STOP_TIMEOUT = 20.0
PR_SET_PDEATHSIG = 1

Echo = Callable[[str], None]


class DemoError(LiveScoreError):
    """The demo could not start (port taken, a child died, ...)."""


@dataclass(frozen=True, slots=True)
class DemoConfig:
    host: str = "127.0.0.1"
    ports: tuple[int, int] = (8000, 8001)
    speed: float = 20.0
    fixture: Path = DEFAULT_FIXTURE
    database: str = "livescore_demo"
    prefix: str = "livescore-demo"

    @property
    def lead(self) -> timedelta:
        """Recorded time between "now" and the first kickoff."""
        return timedelta(seconds=KICKOFF_AFTER * max(self.speed, 1.0))


def fresh_database(admin_dsn: str, name: str) -> str:
    """Drop and create database ``name`` on the server of ``admin_dsn``; its URL."""
    try:
        return create_database(admin_dsn, name, replace=True)
    except StoreError as exc:
        raise DemoError(str(exc)) from exc


async def prepare(database_url: str) -> int:
    """Migrate and seed the demo database; returns the seeded matches."""
    conn = await connect(database_url)
    async with conn:
        await migrate(conn)
        return await seed(conn)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _livescore() -> list[str]:
    script = Path(sys.executable).with_name("livescore")
    return [str(script)] if script.exists() else [sys.executable, "-m", "cli"]


def livescore_command() -> str:
    """The ``livescore`` executable as an absolute path, ready to paste into another
    shell (after ``make`` it is in ``.venv/bin``, usually not on PATH)."""
    argv0 = Path(sys.argv[0])
    candidates = [argv0] if argv0.name == "livescore" else []
    candidates.append(Path(sys.executable).with_name("livescore"))
    found = shutil.which("livescore")
    if found:
        candidates.append(Path(found))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return shlex.quote(str(candidate.absolute()))
    return "livescore"


def port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes] = field(repr=False)

    def tail(self, lines: int = 15) -> str:
        self.log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class Demo:
    def __init__(self, settings: Settings, endpoints: Endpoints, config: DemoConfig) -> None:
        self.settings = settings
        self.endpoints = endpoints
        self.config = config
        self.children: list[Child] = []
        self.log_dir = settings.data_dir / "demo"
        self.database_url = ""

    @property
    def child_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
        env.update(
            DATABASE_URL=self.database_url,
            REDIS_URL=self.endpoints.redis_url,
            LIVESCORE_REDIS_PREFIX=self.config.prefix,
            LIVESCORE_DATA_DIR=str(self.settings.data_dir),
        )
        return env

    def demo_settings(self) -> tuple[Settings, Endpoints]:
        """Settings and endpoints of the demo database and prefix (for the replay)."""
        settings = load_settings(self.child_env)
        return settings, Endpoints(self.database_url, self.endpoints.redis_url, False, False)

    def check_ports(self) -> None:
        for port in self.config.ports:
            if not port_free(self.config.host, port):
                raise DemoError(
                    f"port {port} on {self.config.host} is in use; "
                    "pick others with --port / --second-port"
                )

    def create_database(self) -> None:
        self.database_url = fresh_database(self.endpoints.database_url, self.config.database)

    def start(self, echo: Echo) -> None:
        """Start the worker and both edge nodes; return once every node is healthy."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._spawn("worker", ["worker"], {})
        for n, port in enumerate(self.config.ports, 1):
            self._spawn(
                f"edge-{port}",
                ["serve", "--host", self.config.host, "--port", str(port)],
                {"LIVESCORE_NODE_ID": f"demo-{n}"},
            )
        for port in self.config.ports:
            self._wait_healthy(port)
        echo(f"logs: {self.log_dir}/{{worker,edge-*}}.log")

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        log_path = self.log_dir / f"{name}.log"
        log = log_path.open("wb")
        proc = subprocess.Popen(
            [*_livescore(), *args],
            env={**self.child_env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the demo only; it stops them in order
            preexec_fn=_die_with_parent,  # ... and a killed demo leaves no orphans
        )
        self.children.append(Child(name, proc, log_path, log))

    def _wait_healthy(self, port: int) -> None:
        url = f"http://{self._connect_host}:{port}/health"
        deadline = time.monotonic() + HEALTH_TIMEOUT
        while True:
            self.check_children()
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise DemoError(f"{url} did not answer 200 within {HEALTH_TIMEOUT:.0f}s")
            time.sleep(0.2)

    @property
    def _connect_host(self) -> str:
        return "127.0.0.1" if self.config.host in ("0.0.0.0", "") else self.config.host

    def check_children(self) -> None:
        for child in self.children:
            if child.proc.poll() is not None:
                raise DemoError(
                    f"{child.name} exited with {child.proc.returncode}; "
                    f"the end of {child.log_path}:\n{child.tail()}"
                )

    def urls(self) -> list[str]:
        host = self._connect_host
        first, second = self.config.ports
        return [
            f"  live page   http://{host}:{first}/    (node demo-1)",
            f"              http://{host}:{second}/    (node demo-2)",
            f"  REST API    http://{host}:{first}/api/matches   "
            f"(OpenAPI: http://{host}:{first}/openapi.json)",
            f"  WebSocket   ws://{host}:{first}/ws",
            f"              ws://{host}:{second}/ws",
            f"  metrics     http://{host}:{first}/metrics",
        ]

    def cli_hint(self) -> str:
        return (
            f"DATABASE_URL='{self.database_url}' REDIS_URL='{self.endpoints.redis_url}' "
            f"LIVESCORE_REDIS_PREFIX={self.config.prefix} {livescore_command()} "
            "override score MATCH 2 2 "
            "--reason demo"
        )

    def stop(self) -> list[str]:
        """Terminate every child (SIGTERM, then SIGKILL after STOP_TIMEOUT); their names."""
        for child in self.children:
            if child.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        stopped = []
        for child in self.children:
            try:
                child.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.proc.pid, signal.SIGKILL)
                child.proc.wait(5)
            child.log.close()
            stopped.append(child.name)
        self.children.clear()
        return stopped


async def replay_now(demo: Demo, echo: Echo, *, progress_every: float = 10.0) -> list[str]:
    """Replay the demo's recording shifted to now; the final scores, one line each."""
    from livescore import clock
    from pipeline.context import PipelineContext
    from pipeline.replay import replay
    from pipeline.timeshift import offset_to_now
    from providers.fixture import FixtureFeed
    from store.matches import get_matches

    config = demo.config
    shift = offset_to_now(FixtureFeed(config.fixture), clock.now(), config.lead)
    echo(
        f"replaying {config.fixture.name} at {config.speed:g}x, recorded times shifted by "
        f"{shift} (first kickoff in about {KICKOFF_AFTER:.0f}s)"
    )
    settings, endpoints = demo.demo_settings()
    pctx = await PipelineContext.open(settings, endpoints, pool_size=4)
    try:
        result = await replay(
            pctx,
            config.fixture,
            speed=config.speed,
            shift=shift,
            on_progress=lambda p: echo(f"replay: {p.line()}"),
            progress_every=progress_every,
        )
        async with pctx.pool.connection() as conn:
            matches = await get_matches(conn, sorted(result.report.touched_matches))
    finally:
        await pctx.close()
    return [
        f"  #{m['id']:<4} {m['homeTeam']['name']} {m['homeScore']}-{m['awayScore']} "
        f"{m['awayTeam']['name']}  [{m['status']}]"
        for m in matches
    ]
