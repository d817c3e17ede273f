"""Dead dependencies: Redis down keeps reads (and writes) served and /health says 503;
PostgreSQL down is a 503 envelope, never a 500, and the node recovers by itself."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import psycopg
import pytest

from livescore.model import MatchStatus
from tests.conftest import Services
from tests.edge.conftest import LIVESCORE, ROOT, EdgeServers, auth
from tests.edge.tcp_proxy import TcpProxy
from tests.edge.test_errors import assert_envelope
from tests.factories import Factory
from tests.waiting import eventually_blocking

pytestmark = pytest.mark.slow


def redis_proxy(services: Services) -> TcpProxy:
    url = urlsplit(services.redis_url)
    assert url.hostname and url.port, services.redis_url
    return TcpProxy(host=url.hostname, port=url.port).start()


def proxied_redis_url(services: Services, proxy: TcpProxy) -> str:
    url = urlsplit(services.redis_url)
    return url._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()


def postgres_proxy(services: Services) -> tuple[TcpProxy, str]:
    """A proxy to the run's PostgreSQL and a DATABASE_URL through it."""
    info = psycopg.conninfo.conninfo_to_dict(services.database_url)
    host = str(info.get("host") or "127.0.0.1")
    port = int(str(info.get("port") or 5432))
    if host.startswith("/"):
        proxy = TcpProxy(unix=Path(host) / f".s.PGSQL.{port}").start()
    else:
        proxy = TcpProxy(host=host, port=port).start()
    user = quote(str(info.get("user") or "postgres"), safe="")
    password = info.get("password")
    creds = f"{user}:{quote(str(password), safe='')}" if password else user
    url = f"postgresql://{creds}@127.0.0.1:{proxy.port}/{info['dbname']}"
    return proxy, url


@pytest.fixture
async def match(factory: Factory) -> dict[str, Any]:
    return await factory.match(status=MatchStatus.LIVE)


def test_without_redis_reads_and_writes_work_and_health_is_503(
    services: Services, edge_server: EdgeServers, match: dict[str, Any], api_key: str
) -> None:
    proxy = redis_proxy(services)
    try:
        (node,) = edge_server.start(
            1, REDIS_URL=proxied_redis_url(services, proxy), LIVESCORE_RATE_LIMIT="5/3600"
        )
        proxy.cut()
        with httpx.Client(base_url=node.url, timeout=10) as http:
            # /health answers from the watch loop's latest reading (refreshed every second)
            eventually_blocking(
                lambda: http.get("/health").status_code == 503, 15, "/health to see Redis gone"
            )
            health = http.get("/health")
            assert health.status_code == 503
            body = health.json()
            assert body["status"] == "unavailable"
            assert body["checks"]["redis"]["ok"] is False
            assert body["checks"]["postgres"]["ok"] is True
            assert body["error"]["code"] == "dependency_down"
            assert "redis" in body["error"]["message"]
            # more requests than the limit allows: the limiter fails open without Redis
            for _ in range(8):
                assert http.get(f"/api/matches/{match['id']}").status_code == 200
                assert http.get("/api/matches?limit=5").status_code == 200
            added = http.post(
                f"/api/matches/{match['id']}/commentary",
                json={"minute": 1, "type": "text", "message": "no redis"},
                headers=auth(api_key),
            )
            assert added.status_code == 201, added.text

            proxy.restore()

            def healthy_again() -> bool:
                response = http.get("/health")
                assert response.status_code == 200, response.text
                return response.json()["checks"]["bus"]["ok"] is True

            eventually_blocking(healthy_again, 20, "the node to be healthy again", every=0.2)
        assert "ratelimit.fail_open" in node.log_text()
        assert "bus.subscribed" in node.log_text()
    finally:
        proxy.close()


def test_postgres_down_is_a_503_and_the_node_recovers(
    services: Services, edge_server: EdgeServers, match: dict[str, Any]
) -> None:
    proxy, url = postgres_proxy(services)
    try:
        (node,) = edge_server.start(1, DATABASE_URL=url)
        with httpx.Client(base_url=node.url, timeout=15) as http:
            assert http.get("/api/competitions").status_code == 200
            proxy.cut()
            down = http.get("/api/teams?competition=987654321")  # a page never cached

            assert_envelope(down, 503, "database_unavailable")
            assert down.headers["retry-after"]
            unknown = http.get("/api/matches/987654321")
            assert_envelope(unknown, 503, "database_unavailable")
            eventually_blocking(
                lambda: http.get("/health").status_code == 503, 15, "/health to see it gone"
            )
            health = http.get("/health")
            assert health.status_code == 503
            assert health.json()["checks"]["postgres"]["ok"] is False
            assert health.json()["staleMatches"] is None
            assert node.process.poll() is None, "the node must keep running"

            proxy.restore()

            def serving_again() -> bool:
                assert http.get("/health").status_code == 200
                return http.get(f"/api/matches/{match['id']}").status_code == 200

            eventually_blocking(serving_again, 20, "the node to serve again", every=0.2)
        assert "Traceback" not in node.log_text()
    finally:
        proxy.close()


def test_serve_without_postgres_exits_with_a_clear_error(services: Services) -> None:
    env = services.env(DATABASE_URL="postgresql://postgres@127.0.0.1:1/nothing")
    result = subprocess.run(
        [LIVESCORE, "serve", "--host", "127.0.0.1", "--port", "1"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("Error: cannot connect to PostgreSQL")
    assert "DATABASE_URL" in result.stderr and "Traceback" not in result.stderr
