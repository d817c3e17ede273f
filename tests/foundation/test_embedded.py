"""The embedded default: private PostgreSQL + Redis from wheels, shared, stoppable, durable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis as syncredis

from livescore import embedded
from store.migrate import load_migrations

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "data"
    try:
        yield path
    finally:
        embedded.stop(path)


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env["LIVESCORE_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


def test_second_process_reuses_the_running_servers(data_dir: Path) -> None:
    first = embedded.ensure_running(data_dir)
    pids = {s.name: s.pid for s in embedded.status(data_dir)}
    code = (
        "import json, sys; from pathlib import Path; from livescore import embedded; "
        f"e = embedded.ensure_running(Path({str(data_dir)!r})); "
        "print(json.dumps([e.database_url, e.redis_url]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert json.loads(out.stdout) == [first.database_url, first.redis_url]
    assert {s.name: s.pid for s in embedded.status(data_dir)} == pids


def test_servers_bind_loopback_or_socket_and_redis_never_evicts(data_dir: Path) -> None:
    endpoints = embedded.ensure_running(data_dir)
    assert "host=" + str(data_dir.resolve() / "pgdata") in endpoints.database_url
    assert endpoints.redis_url.startswith("redis://127.0.0.1:")
    client = syncredis.Redis.from_url(endpoints.redis_url)
    try:
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        assert client.config_get("appendonly") == {"appendonly": "yes"}
    finally:
        client.close()


def test_data_survives_stop_and_restart(data_dir: Path) -> None:
    endpoints = embedded.ensure_running(data_dir)
    with psycopg.connect(endpoints.database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE keep_me (x int)")
        conn.execute("INSERT INTO keep_me VALUES (42)")
    client = syncredis.Redis.from_url(endpoints.redis_url)
    client.set("keep", "me")
    client.close()

    assert sorted(embedded.stop(data_dir)) == ["postgres", "redis"]
    assert not any(s.running for s in embedded.status(data_dir))

    again = embedded.ensure_running(data_dir)
    with psycopg.connect(again.database_url) as conn:
        row = conn.execute("SELECT x FROM keep_me").fetchone()
    assert row == (42,)
    client = syncredis.Redis.from_url(again.redis_url)
    try:
        assert client.get("keep") == b"me"
    finally:
        client.close()


def test_cli_status_and_stop_report_the_embedded_servers(data_dir: Path) -> None:
    assert cli(data_dir, "db", "migrate").returncode == 0
    status = cli(data_dir, "db", "status")
    assert status.returncode == 0, status.stderr
    assert "postgres: running" in status.stdout and "redis: running" in status.stdout
    total = len(load_migrations())
    assert f"migrations: {total} of {total} applied" in status.stdout
    stop = cli(data_dir, "db", "stop")
    assert stop.returncode == 0 and "stopped postgres, redis" in stop.stdout
    assert "postgres: stopped" in cli(data_dir, "db", "status").stdout


def test_with_service_urls_set_nothing_embedded_starts(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "LIVESCORE_DATA_DIR": str(tmp_path / "unused"),
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "REDIS_URL": "redis://127.0.0.1:1/0",
    }
    result = subprocess.run(
        [sys.executable, "-m", "cli", "db", "migrate"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 1
    assert "cannot connect to PostgreSQL" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "unused" / "pgdata").exists()
