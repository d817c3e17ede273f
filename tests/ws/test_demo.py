"""``livescore demo`` end to end: one command brings up a worker and two edge
nodes, replays a matchday as today's and prints the URLs; Ctrl-C stops every
child process."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from pipeline.demo import livescore_command
from store.admin import drop_database
from tests.conftest import Services
from tests.servers import free_port
from tests.waiting import eventually_blocking

LIVESCORE = str(Path(sys.executable).with_name("livescore"))


def children_of(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


@pytest.mark.slow
def test_demo_runs_everything_and_ctrl_c_stops_it(services: Services, tmp_path: Path) -> None:
    database = f"livescore_demo_test_{secrets.token_hex(3)}"
    port, second = free_port(), free_port()
    out = (tmp_path / "demo.out").open("w+b")
    env = services.env(
        DATABASE_URL=services.database_url,
        LIVESCORE_DATA_DIR=str(tmp_path / "data"),
        PORT=str(port),  # the first node's port, as `make demo PORT=...` would give it
    )
    demo = subprocess.Popen(
        [LIVESCORE, "demo", "--second-port", str(second),
         "--speed", "2000", "--database", database, "--prefix", f"{services.prefix}.demo"],
        env=env, stdout=out, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:

        def serving() -> str | None:
            text = Path(out.name).read_text()
            if demo.poll() is not None:
                raise RuntimeError(f"the demo exited:\n{text}")
            return text if "the nodes keep serving" in text else None

        text = eventually_blocking(serving, 120, "the demo to serve", every=0.5)
        for url in (
            f"http://127.0.0.1:{port}/",
            f"http://127.0.0.1:{second}/",
            f"http://127.0.0.1:{port}/api/matches",
            f"ws://127.0.0.1:{port}/ws",
            f"ws://127.0.0.1:{second}/ws",
        ):
            assert url in text
        # the try-it line names livescore by its full path: it works pasted without the venv
        assert f"{LIVESCORE} override score MATCH 2 2 --reason demo" in text
        assert "Brighton & Hove Albion FC 5-2 Leicester City FC  [finished]" in text
        assert "Manchester United FC 3-1 Arsenal FC  [finished]" in text
        for p in (port, second):
            listed = httpx.get(f"http://127.0.0.1:{p}/api/matches?limit=200").json()["data"]
            names = {m["homeTeam"]["name"] for m in listed}
            assert {"Brighton & Hove Albion FC", "Aston Villa FC"} <= names  # replayed + seeded
            # nothing frozen: the seeded live match's clock runs; nobody is live twice
            in_play = [m for m in listed if m["status"] in ("live", "halftime", "extra_time")]
            assert any(m["clock"]["running"] for m in in_play), in_play
            teams = [m[side]["id"] for m in in_play for side in ("homeTeam", "awayTeam")]
            assert len(teams) == len(set(teams)), in_play
        descendants = children_of(demo.pid)
        assert len(descendants) >= 3  # the worker and two edge nodes
        demo.send_signal(signal.SIGINT)
        assert demo.wait(40) == 0, Path(out.name).read_text()
        # the idle worker did not wait out its 10 s grace: SAQ says so when it does
        # ("grace period"); how long an idle stop takes is pinned by test_worker's
        # test_an_idle_worker_stops_at_once_without_saq_grace_warnings, with a grace
        # long enough that load cannot be mistaken for it
        worker_log = (tmp_path / "data" / "demo" / "worker.log").read_text()
        assert "worker.stopped" in worker_log
        assert "grace period" not in worker_log
        text = Path(out.name).read_text()
        assert "stopped worker, edge-" in text
        assert not [pid for pid in descendants if alive(pid)]
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(10)
        out.close()
        drop_database(services.database_url, database)


def test_the_try_it_command_is_an_absolute_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [LIVESCORE, "demo"])
    assert livescore_command() == LIVESCORE
    # run as `python -m cli demo`: the venv's script next to the interpreter
    monkeypatch.setattr(sys, "argv", [str(Path(__file__)), "demo"])
    assert livescore_command() == LIVESCORE
