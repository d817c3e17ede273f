"""Commands facing a missing PostgreSQL or Redis: a command whose database is
not there fails fast with one line; a worker started before Redis waits for it
with one log line per try, then starts. Real subprocesses (``python -m cli``)."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from livescore.reachable import redact_redis
from tests.conftest import Services
from tests.pipeline.conftest import ROOT, cli_env
from tests.servers import PrivateRedis, free_port
from tests.waiting import eventually_blocking

#: ``store.db.open_pool``'s ``pool.open(timeout=15)``: what a command would wait
#: retrying if it did not try one plain connection first.
POOL_OPEN_S = 15.0


@pytest.mark.parametrize(
    "command",
    [["providers", "list"], ["ingest", "--once"], ["db", "migrate"], ["worker"]],
    ids=" ".join,
)
async def test_a_command_with_database_url_on_a_closed_port_fails_fast_with_one_line(
    services: Services, command: list[str]
) -> None:
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/x"
    env = services.env(DATABASE_URL=closed, LIVESCORE_REDIS_PREFIX=services.next_prefix())
    started = time.monotonic()
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "cli", *command],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    took = time.monotonic() - started
    assert result.returncode == 1, (result.stdout, result.stderr)
    (line,) = result.stderr.splitlines()  # no pool warnings, no traceback, no libpq line break
    assert line.startswith(
        "Error: cannot connect to PostgreSQL at postgresql://postgres@127.0.0.1:"
    )
    # Fast is a path, not a speed: the one plain connection tried first was refused
    # (not timed out) and its error ended the command. The pool's message (which
    # adds "or unset it for the embedded server") would mean the pool ran and
    # retried for its whole open timeout.
    assert "Connection refused" in line, line
    assert line.endswith("; check DATABASE_URL"), line
    # and no retry budget was waited out: through the pool it takes at least
    # POOL_OPEN_S; the fast path ~1.5 s idle (a tenfold margin, not a speed check)
    assert took < POOL_OPEN_S, took


def test_a_worker_started_while_redis_is_unreachable_logs_one_line_per_retry_then_starts(
    services: Services, tmp_path: Path
) -> None:
    redis = PrivateRedis(tmp_path)  # not started yet: its port refuses connections
    log_file = tmp_path / "worker.log"
    env = cli_env(services, services.next_prefix(), REDIS_URL=redis.url)
    with log_file.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "worker"],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
            cwd=ROOT,
        )
    try:
        _wait_for(log_file, lambda text: text.count("redis.unreachable") >= 3, 20)
        redis.start()
        _wait_for(log_file, lambda text: "worker.started" in text, 30)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        if redis.proc is not None:
            redis.kill(signal.SIGTERM)
    lines = log_file.read_text().splitlines()
    assert "Traceback" not in "\n".join(lines)
    retries = [line for line in lines if " redis.unreachable " in line]
    assert len(retries) >= 3
    for n, line in enumerate(retries, start=1):
        assert f"attempt={n} " in line, line
        assert f"url={redis.url}" in line and "Connect call failed" in line
        assert re.search(r"retry_in_s=\d+\.\d+$", line), line
    # every line is one log record: the retries are all it said before Redis came
    before = lines[: lines.index(next(line for line in lines if "redis.reachable" in line))]
    assert [line for line in before if " redis.unreachable " not in line] == []


def test_a_redis_password_never_reaches_the_log() -> None:
    assert redact_redis("redis://:s3cret@cache:6379/0") == "redis://:***@cache:6379/0"
    assert redact_redis("redis://user:s3cret@cache/0") == "redis://user:***@cache/0"
    assert redact_redis("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def _wait_for(path: Path, condition: Callable[[str], bool], within: float) -> None:
    """Until the log at ``path`` satisfies ``condition``; fails showing the log so far."""

    def logged() -> bool:
        assert condition(path.read_text()), f"log so far:\n{path.read_text()}"
        return True

    eventually_blocking(logged, within, "the log")
