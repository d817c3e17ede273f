"""RedisBudget / RedisBodyHashCache against a real Redis (the harness's ``redis`` fixture)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import redis.asyncio as aioredis

from livescore.keys import Keys
from pipeline.budget import RedisBodyHashCache, RedisBudget
from providers.base import FeedConfig, RequestSpec
from providers.errors import BudgetExhausted
from providers.http import FeedClient
from tests.providers.test_http import TokenAdapter


async def test_slots_are_taken_until_the_budget_is_spent(redis: aioredis.Redis, keys: Keys) -> None:
    budget = RedisBudget(redis, keys)
    assert await budget.remaining("fd", 3) == 3
    assert [await budget.acquire("fd", 3) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert await budget.remaining("fd", 3) == 0
    wait = await budget.acquire("fd", 3)
    assert 0 < wait <= 60.0
    assert await redis.zcard(keys.budget("fd")) == 3  # the refused request took nothing
    assert await redis.pttl(keys.budget("fd")) > 0  # the key expires on its own


async def test_feeds_have_separate_budgets(redis: aioredis.Redis, keys: Keys) -> None:
    budget = RedisBudget(redis, keys)
    assert await budget.acquire("fd", 1) == 0.0
    assert await budget.acquire("af", 1) == 0.0
    assert await budget.acquire("fd", 1) > 0


async def test_concurrent_workers_never_overspend(redis: aioredis.Redis, keys: Keys) -> None:
    workers = [RedisBudget(redis, keys) for _ in range(4)]  # as if four processes
    results = await asyncio.gather(*(workers[i % 4].acquire("fd", 5) for i in range(40)))
    assert sum(1 for r in results if r == 0.0) == 5
    assert all(r > 0 for r in results if r != 0.0)


async def test_the_window_slides(redis: aioredis.Redis, keys: Keys) -> None:
    budget = RedisBudget(redis, keys, window_s=0.2)
    assert await budget.acquire("fd", 1) == 0.0
    wait = await budget.acquire("fd", 1)
    assert 0 < wait <= 0.2
    # the window slides on Redis's clock: no clock to advance, no event to await
    await asyncio.sleep(wait + 0.05)
    assert await budget.acquire("fd", 1) == 0.0


async def test_feed_client_uses_the_shared_budget(redis: aioredis.Redis, keys: Keys) -> None:
    feed = FeedConfig(name="fd", kind="test-feed", budget_per_minute=2)
    transport = httpx.MockTransport(lambda request: httpx.Response(200, text="{}"))
    spec = RequestSpec("live", "/v4/matches")
    clients = [
        FeedClient(TokenAdapter(feed), transport=transport, budget=RedisBudget(redis, keys))
        for _ in range(2)
    ]
    try:
        await clients[0].send(spec)
        await clients[1].send(spec)
        assert await clients[0].budget_remaining() == 0
        with pytest.raises(BudgetExhausted) as info:
            await clients[0].send(spec)
        assert 0 < info.value.retry_after_s <= 60
    finally:
        for client in clients:
            await client.aclose()


async def test_body_hashes_are_shared(redis: aioredis.Redis, keys: Keys) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, text='{"a": 1}'))
    feed = FeedConfig(name="fd", kind="test-feed")
    spec = RequestSpec("live", "/v4/matches")
    one = FeedClient(
        TokenAdapter(feed), transport=transport, body_cache=RedisBodyHashCache(redis, keys)
    )
    two = FeedClient(
        TokenAdapter(feed), transport=transport, body_cache=RedisBodyHashCache(redis, keys)
    )
    try:
        assert (await one.poll(spec)).changed
        assert not (await two.poll(spec)).changed  # another worker already saw this body
        await two.forget(spec)
        assert (await one.poll(spec)).changed
    finally:
        await one.aclose()
        await two.aclose()
    cache = RedisBodyHashCache(redis, keys)
    assert await cache.get("fd", "nope") is None
