"""``livescore status`` against real processes (issue 14): a real ``livescore
worker`` polling a local HTTP provider, a real ``livescore serve`` node, and
the real CLI, each on a fresh database and its own Redis prefix (status reads
everything: the run's shared database would show other tests' matches).

Healthy, it exits 0 and shows every part; each fault injected (the worker
killed, the relay stalled, a feed failing, a live match stale) makes it exit 1
naming the fault, and the fault's end makes it healthy again where one can end.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from livescore.model import MatchStatus
from store.changes import try_lead_relay
from store.db import Conn, connect
from tests.conftest import Services
from tests.edge.conftest import EdgeNode, EdgeServers
from tests.factories import Factory
from tests.pipeline.builders import fd_list, fd_match, minutes
from tests.pipeline.conftest import FreshDb, Reply, ScriptedServer
from tests.waiting import eventually
from tests.ws.helpers import play

pytestmark = pytest.mark.slow

LIVESCORE = str(Path(sys.executable).with_name("livescore"))


def provider_day() -> str:
    """football-data's list: one match live, one later today."""
    from livescore import clock

    kickoff = clock.now().replace(microsecond=0)
    return fd_list(
        fd_match(4001, (65, "Manchester City FC"), (66, "Manchester United FC"),
                 status=MatchStatus.LIVE, score=(1, 0), kickoff=kickoff, minute=20),
        fd_match(4002, (57, "Arsenal FC"), (61, "Chelsea FC"), kickoff=kickoff + minutes(180)),
    )  # fmt: skip


@dataclass
class Install:
    """One install: a fresh database, a Redis prefix, and the processes on them."""

    services: Services
    database_url: str
    prefix: str
    workdir: Path
    edges: EdgeServers
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        return self.services.env(
            DATABASE_URL=self.database_url, LIVESCORE_REDIS_PREFIX=self.prefix, **extra
        )

    async def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(
            subprocess.run,
            [LIVESCORE, *args],
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=90,
        )

    async def status(self, *args: str, **env: str) -> tuple[int, dict[str, Any]]:
        result = await self.cli("status", "--json", *args, **env)
        assert result.returncode in (0, 1), result.stderr
        return result.returncode, orjson.loads(result.stdout)

    async def add_feed(self, server: ScriptedServer) -> None:
        result = await self.cli(
            "providers", "add", "fd-local", "--kind", "football-data", "--base-url", server.url,
            "--poll-live", "1s", "--poll-idle", "1s", "--budget", "600",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr

    def start_worker(self) -> subprocess.Popen[bytes]:
        log_path = self.workdir / f"worker-{len(self.workers)}.log"
        with log_path.open("wb") as log:
            worker = subprocess.Popen(
                [LIVESCORE, "worker"],
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.workers.append(worker)
        return worker

    def start_edge(self) -> EdgeNode:
        (node,) = self.edges.start(1, prefix=self.prefix, DATABASE_URL=self.database_url)
        return node

    async def db(self) -> Conn:
        return await connect(self.database_url)

    def stop(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                worker.kill()
            worker.wait()
        self.edges.stop_all()


@pytest.fixture
async def install(services: Services, fresh_db: FreshDb, tmp_path: Path) -> AsyncIterator[Install]:
    found = Install(
        services,
        await fresh_db(),
        services.next_prefix(),
        tmp_path,
        EdgeServers(services, tmp_path),
    )
    try:
        yield found
    finally:
        found.stop()


@pytest.fixture
def provider(http_server: ScriptedServer) -> Iterator[ScriptedServer]:
    http_server.default = Reply(200, provider_day())
    yield http_server


def problem_codes(body: dict[str, Any]) -> list[str]:
    return [problem["code"] for problem in body["problems"]]


async def test_a_healthy_install_exits_0_and_shows_feeds_queue_relay_nodes_and_matches(
    install: Install, provider: ScriptedServer
) -> None:
    await install.add_feed(provider)
    worker = install.start_worker()
    node = install.start_edge()

    async def healthy() -> dict[str, Any]:
        code, body = await install.status()
        assert code == 0, body["problems"]
        (feed,) = body["feeds"]
        assert feed["lastSuccess"] is not None and feed["observationsLastHour"] == 2
        assert body["matches"]["live"] == 1
        assert [n["id"] for n in body["nodes"]] == [node.node_id]
        assert body["relay"]["leader"]["worker"] is not None
        # the live match's changes, published (the worker's heartbeat carries the lag)
        assert (body["relay"]["lag"] or {}).get("count", 0) >= 1
        return body

    body = await eventually(healthy, 60, "status to be healthy with everything read")
    assert set(body) >= {"feeds", "queue", "relay", "nodes", "matches", "problems"}
    assert body["problems"] == [] and body["healthy"] is True
    (feed,) = body["feeds"]
    assert feed["name"] == "fd-local" and feed["enabled"] is True
    assert feed["failuresInRow"] == 0 and feed["lastError"] is None
    assert feed["rejectedLastHour"] == 0
    assert feed["budgetLimit"] == 600 and 1 <= feed["budgetUsed"] <= 600
    assert feed["budgetLeft"] == 600 - feed["budgetUsed"]
    assert feed["pausedUntil"] is None
    queue = body["queue"]
    assert queue["workersAlive"] == 1 and queue["failedLastHour"] == 0
    assert queue["workers"][0]["id"].endswith(f"-{worker.pid}")
    assert queue["workers"][0]["relayLeader"] is True
    relay = body["relay"]
    assert relay["leader"]["worker"] == queue["workers"][0]["id"]
    assert relay["backlog"] == 0 and relay["oldestUnpublishedSeconds"] is None
    assert 0 <= relay["lag"]["p50"] <= relay["lag"]["p99"] <= relay["lag"]["max"] < 60
    (edge,) = body["nodes"]
    assert edge["workers"] == 1 and edge["version"] and edge["connections"] == 0
    assert body["matches"] == {"live": 1, "stale": 0, "overridden": 0, "staleIds": []}

    text = await install.cli("status")
    assert text.returncode == 0, text.stdout
    assert "fd-local (football-data, enabled)" in text.stdout
    assert "1 worker(s) alive" in text.stdout
    assert f"  {node.node_id}: 1 worker(s), 0 connections" in text.stdout
    assert "1 live, 0 stale, 0 overridden" in text.stdout
    assert text.stdout.rstrip().endswith("HEALTHY: no problems")


async def test_a_killed_worker_makes_status_exit_1_with_no_worker_alive(
    install: Install,
) -> None:
    worker = install.start_worker()

    async def one_worker() -> bool:
        code, body = await install.status()
        return code == 0 and body["queue"]["workersAlive"] == 1

    await eventually(one_worker, 60, "the worker to be seen")
    worker.send_signal(signal.SIGKILL)
    worker.wait()

    async def no_worker() -> dict[str, Any]:
        code, body = await install.status()
        assert code == 1 and "no_worker" in problem_codes(body), body["problems"]
        return body

    # silent first (worker_stuck), gone once its heartbeat key expires
    body = await eventually(no_worker, 40, "status to say no worker is alive")
    assert body["queue"]["workersAlive"] == 0
    result = await install.cli("status")
    assert result.returncode == 1
    assert "[no_worker] no worker alive" in result.stdout
    assert "start `livescore worker`" in result.stdout


async def test_a_stalled_relay_makes_status_exit_1_until_changes_flow_again(
    install: Install,
) -> None:
    # a relay that leads but never publishes: the test's session holds the relay lock
    holder = await install.db()
    try:
        assert await try_lead_relay(holder)
        install.start_worker()
        conn = await install.db()
        async with conn:
            match_id = (await Factory(conn).match())["id"]
            await play(conn, match_id, 1)

        async def stalled() -> dict[str, Any]:
            code, body = await install.status(LIVESCORE_RELAY_STALL_AFTER="2")
            assert body["queue"]["workersAlive"] == 1, "the worker is not up yet"
            assert code == 1 and "relay_stalled" in problem_codes(body), body["problems"]
            return body

        body = await eventually(stalled, 40, "status to call the relay stalled")
        # stalled means older than 2 s; the JSON rounds the age to 0.01 s (2.001 shows as 2.0)
        assert body["relay"]["backlog"] >= 1 and body["relay"]["oldestUnpublishedSeconds"] >= 2
        assert body["relay"]["leader"]["worker"] is None  # no worker leads: a stranger does
        assert body["relay"]["leader"]["pid"] == holder.info.backend_pid
        assert problem_codes(body) == ["relay_stalled"]
    finally:
        await holder.close()  # the stranger goes: the worker's relay takes over and publishes

    async def flowing() -> bool:
        code, body = await install.status(LIVESCORE_RELAY_STALL_AFTER="2")
        assert code == 0, body["problems"]
        return body["relay"]["backlog"] == 0

    await eventually(flowing, 40, "status to be healthy once the relay publishes")


async def test_a_feed_failing_repeatedly_is_named_by_status_health_and_metrics(
    install: Install, http_server: ScriptedServer
) -> None:
    http_server.default = Reply(401, '{"message": "Your API token is invalid."}')
    await install.add_feed(http_server)
    install.start_worker()
    node = install.start_edge()

    async def failing() -> dict[str, Any]:
        code, body = await install.status()
        assert code == 1 and problem_codes(body) == ["feed_failing"], body["problems"]
        return body

    body = await eventually(failing, 60, "status to name the failing feed")
    (feed,) = body["feeds"]
    assert feed["failuresInRow"] >= 3 and feed["lastSuccess"] is None
    assert feed["lastErrorKind"] == "credentials"
    assert feed["errors"]["credentials"] == feed["failuresInRow"]
    assert "feed fd-local failing" in body["problems"][0]["message"]

    async with httpx.AsyncClient(base_url=node.url, timeout=10) as http:

        async def degraded() -> dict[str, Any]:
            response = await http.get("/health")
            assert response.status_code == 200  # a failing feed never fails the node
            health = response.json()
            assert health["status"] == "degraded", health
            return dict(health)

        health = await eventually(degraded, 20, "/health to say degraded")
        assert health["checks"]["feeds"]["fd-local"]["ok"] is False
        assert any("feed fd-local failing" in note for note in health["problems"])
        metrics = (await http.get("/metrics")).text
    assert 'livescore_feed_errors_total{feed="fd-local",kind="credentials"}' in metrics
    assert 'livescore_feed_polls_total{feed="fd-local"}' in metrics
    assert 'livescore_feed_budget_left{feed="fd-local"}' in metrics

    # one failure is enough when the operator says so
    code, _ = await install.status("--feed-failures", "1000")
    assert code == 0


async def test_a_stale_live_match_makes_status_exit_1_naming_it(install: Install) -> None:
    install.start_worker()
    conn = await install.db()
    async with conn:
        match_id = (await Factory(conn).match(status=MatchStatus.LIVE))["id"]
        await conn.execute("UPDATE matches SET stale = true WHERE id = %s", (match_id,))

    async def stale() -> dict[str, Any]:
        code, body = await install.status()
        assert code == 1 and problem_codes(body) == ["stale_matches"], body["problems"]
        return body

    body = await eventually(stale, 40, "status to name the stale match")
    assert body["matches"]["stale"] == 1 and body["matches"]["staleIds"] == [match_id]
    assert f"(ids {match_id})" in body["problems"][0]["message"]


def test_status_reports_an_unreachable_database_instead_of_a_traceback(
    services: Services,
) -> None:
    result = subprocess.run(
        [LIVESCORE, "status", "--json"],
        env=services.env(DATABASE_URL="postgresql://nobody@127.0.0.1:9/none"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    body = orjson.loads(result.stdout)
    assert "postgres_down" in problem_codes(body)
    assert body["feeds"] is None and body["matches"] is None
    assert "Traceback" not in result.stderr


def test_watch_redraws_until_interrupted_and_exits_with_the_last_verdict(
    services: Services,
) -> None:
    with subprocess.Popen(
        [LIVESCORE, "status", "--json", "--watch", "--every", "0.2"],
        env=services.env(DATABASE_URL="postgresql://nobody@127.0.0.1:9/none"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as watcher:
        try:
            assert watcher.stdout is not None
            frames = [orjson.loads(watcher.stdout.readline()) for _ in range(2)]
            assert all("postgres_down" in problem_codes(frame) for frame in frames)
            assert frames[0]["time"] <= frames[1]["time"]
            watcher.send_signal(signal.SIGINT)
            assert watcher.wait(timeout=30) == 1
        finally:
            if watcher.poll() is None:
                watcher.kill()
