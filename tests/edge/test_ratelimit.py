"""Rate limits are shared by every edge node through Redis: 429 with Retry-After."""

from __future__ import annotations

import asyncio
import itertools
import secrets

import httpx
import pytest
import redis.asyncio as aioredis

from edge import ratelimit
from edge.ratelimit import RateLimiter
from livescore.config import RateLimit
from livescore.keys import Keys
from tests.edge.conftest import EdgeServers
from tests.edge.test_errors import assert_envelope
from tests.waiting import FakeClock, eventually


@pytest.mark.slow
async def test_two_nodes_enforce_one_shared_limit(edge_server: EdgeServers) -> None:
    nodes = edge_server.start(2, LIVESCORE_RATE_LIMIT="10/3600")
    async with httpx.AsyncClient() as http:
        responses = [
            await http.get(f"{node.url}/api/competitions")
            for node in itertools.islice(itertools.cycle(nodes), 16)
        ]
        health = [await http.get(f"{node.url}/health") for node in nodes]
        metrics = [await http.get(f"{node.url}/metrics") for node in nodes]
    statuses = [r.status_code for r in responses]
    assert statuses == [200] * 10 + [429] * 6, statuses
    for refused in responses[10:]:
        assert_envelope(refused, 429, "rate_limited")
        assert 1 <= int(refused.headers["retry-after"]) <= 360
        assert refused.json()["error"]["details"]["scope"] == "ip"
    # both nodes refused: the limit is one, not one per node
    assert {r.url.port for r in responses[10:]} == {n.port for n in nodes}
    assert all(r.status_code == 200 for r in health + metrics), "health/metrics are exempt"


@pytest.mark.slow
async def test_forwarded_for_counts_only_behind_a_trusted_proxy(
    edge_server: EdgeServers,
) -> None:
    (direct,) = edge_server.start(1, LIVESCORE_RATE_LIMIT="2/3600")
    (proxied,) = edge_server.start(1, LIVESCORE_RATE_LIMIT="2/3600", LIVESCORE_PROXIES_COUNT="1")
    async with httpx.AsyncClient() as http:

        async def statuses(url: str) -> list[int]:
            return [
                (
                    await http.get(
                        f"{url}/api/competitions", headers={"X-Forwarded-For": f"203.0.113.{n}"}
                    )
                ).status_code
                for n in range(4)
            ]

        # untrusted: a client cannot dodge its limit by inventing addresses
        assert await statuses(direct.url) == [200, 200, 429, 429]
        # trusted proxy: every forwarded address has its own bucket
        assert await statuses(proxied.url) == [200, 200, 200, 200]


# -- the limiter itself, two "workers" on one real Redis ------------------------------------


def limiter(
    redis: aioredis.Redis, keys: Keys, count: int, seconds: int, clock: FakeClock | None = None
) -> RateLimiter:
    if clock is None:
        return RateLimiter(redis, keys, RateLimit(count, seconds))
    return RateLimiter(redis, keys, RateLimit(count, seconds), clock=clock)


async def test_leases_never_let_more_than_the_limit_through(
    redis: aioredis.Redis, keys: Keys
) -> None:
    workers = [limiter(redis, keys, 100, 3600) for _ in range(3)]
    allowed = 0
    for n in range(400):
        decision = await workers[n % 3].check("ip", "192.0.2.1")
        allowed += decision.allowed
    assert allowed == 100
    refused = await workers[0].check("ip", "192.0.2.1")
    assert not refused.allowed and refused.retry_after >= 1


async def test_concurrent_requests_and_top_ups_stay_within_the_limit(
    redis: aioredis.Redis, keys: Keys
) -> None:
    workers = [limiter(redis, keys, 3000, 360_000) for _ in range(3)]  # ~no refill

    async def burst(worker: RateLimiter) -> int:
        results = await asyncio.gather(*(worker.check("ip", "192.0.2.9") for _ in range(50)))
        return sum(d.allowed for d in results)

    allowed = 0
    for _ in range(30):  # 4500 requests, 50 at a time per worker, interleaved
        allowed += sum(await asyncio.gather(*(burst(w) for w in workers)))
    assert allowed == 3000


async def test_a_busy_client_costs_few_redis_round_trips(
    redis: aioredis.Redis, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = limiter(redis, keys, 1_000_000, 60)
    calls = 0
    script = worker._script

    async def counting(**kwargs: object) -> object:
        nonlocal calls
        calls += 1
        return await script(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(worker, "_script", counting)
    for _ in range(5000):
        assert (await worker.check("ip", "192.0.2.2")).allowed
    assert calls < 20


async def test_unspent_leases_go_back_to_the_bucket(redis: aioredis.Redis, keys: Keys) -> None:
    clock = FakeClock()
    first, second = limiter(redis, keys, 64, 3600, clock), limiter(redis, keys, 64, 3600)
    await first.check("ip", "192.0.2.3")
    await first.check("ip", "192.0.2.3")  # now holds a lease of several tokens
    assert first._leases
    clock.advance(ratelimit.LEASE_SECONDS)
    await first.check("ip", "192.0.2.3")  # expired lease: its tokens are refunded
    await eventually(lambda: not first._background, what="the refund")
    allowed = 0
    for _ in range(80):
        allowed += (await second.check("ip", "192.0.2.3")).allowed
    assert allowed >= 64 - 3 - 8, allowed  # everything but what the first spent or holds


async def test_redis_down_fails_open(keys: Keys) -> None:
    dead = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    worker = limiter(dead, keys, 1, 3600)
    try:
        results = [await worker.check("ip", f"192.0.2.{secrets.randbelow(200)}") for _ in range(5)]
    finally:
        await dead.aclose()
    assert all(d.allowed for d in results)
    assert worker.failed_open == 5
