"""What every pipeline job needs, opened once per process: the pool, Redis,
key names, the reconciliation policy and one FeedClient per feed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import redis.asyncio as aioredis

from livescore.config import Settings
from livescore.feeds import FeedConfig
from livescore.keys import Keys
from livescore.runtime import Endpoints, redis_client
from pipeline.budget import RedisBodyHashCache, RedisBudget
from pipeline.decision import ReconcilePolicy
from providers.http import FeedClient
from providers.registry import adapter_for
from store.db import Pool, open_pool


def policy_from(settings: Settings) -> ReconcilePolicy:
    return ReconcilePolicy(
        stale_after=timedelta(seconds=settings.stale_after_s),
        idle_stale_after=timedelta(seconds=max(settings.stale_after_s, 1800)),
        finished_window=timedelta(seconds=max(settings.finished_window_s, 1)),
        assumed_duration=timedelta(seconds=settings.match_duration_s),
    )


@dataclass
class PipelineContext:
    settings: Settings
    endpoints: Endpoints
    pool: Pool
    redis: aioredis.Redis
    keys: Keys
    policy: ReconcilePolicy
    clients: dict[str, tuple[FeedConfig, FeedClient]] = field(default_factory=dict)
    retired: list[FeedClient] = field(default_factory=list)
    #: polls this process runs right now (``pipeline.jobs.poll`` keeps job slots free)
    polls_running: int = 0
    #: ``webhook`` jobs this process runs right now (they leave slots to polls too)
    webhooks_running: int = 0

    @classmethod
    async def open(
        cls, settings: Settings, endpoints: Endpoints, *, pool_size: int = 10
    ) -> PipelineContext:
        pool = await open_pool(endpoints.database_url, max_size=pool_size, name="pipeline")
        return cls(
            settings=settings,
            endpoints=endpoints,
            pool=pool,
            redis=redis_client(endpoints.redis_url),
            keys=Keys(settings.redis_prefix),
            policy=policy_from(settings),
        )

    def client_for(self, feed: FeedConfig) -> FeedClient:
        """The FeedClient of ``feed`` (rebuilt when its configuration changed).
        Budgets and body hashes live in Redis, shared by every worker."""
        cached = self.clients.get(feed.name)
        if cached is not None and cached[0] == feed:
            return cached[1]
        if cached is not None:
            # the feed was reconfigured: close the old client when we close
            self.retired.append(cached[1])
        client = FeedClient(
            adapter_for(feed),
            budget=RedisBudget(self.redis, self.keys),
            body_cache=RedisBodyHashCache(self.redis, self.keys),
        )
        self.clients[feed.name] = (feed, client)
        return client

    async def close(self) -> None:
        for client in [c for _, c in self.clients.values()] + self.retired:
            await client.aclose()
        self.clients.clear()
        self.retired.clear()
        await self.redis.aclose()
        await self.pool.close()
