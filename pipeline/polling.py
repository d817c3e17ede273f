"""Polling one feed: request, change detection, parse, ingest, vanished matches.

* ``purpose="live"`` asks for the feed's live list (today's list when the
  feed has none); ``"today"`` for every match of the UTC day.
* An unchanged body (same hash as the last one for this request) is not
  parsed again: the observations it produced last time are only marked as
  seen now, so they stay fresh.
* A match the feed had in play that is missing from its live list is
  fetched by id, not assumed over.
* A malformed payload is logged and counted, nothing is ingested from it,
  and the worker keeps going.
* A provider that says "wait" (``Throttled``: 429, ``Retry-After``...) pauses
  the feed for every worker (``pipeline.budget.FeedPause``) before the error
  goes up: the poll ends at once, no one sleeps.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import orjson

from livescore.feeds import FeedConfig
from livescore.logs import kv
from pipeline.budget import FeedPause
from pipeline.context import PipelineContext
from pipeline.ingest import PARALLEL, IngestReport, ingest_observations
from providers.base import Purpose, RequestSpec
from providers.errors import PayloadError, Throttled
from providers.http import request_key
from store import coverage, observations
from store.feeds import priorities

log = logging.getLogger("livescore.pipeline.polling")


@dataclass
class PollOutcome:
    feed: str
    purpose: Purpose
    changed: bool
    report: IngestReport
    vanished_fetched: int = 0
    malformed: tuple[PayloadError, ...] = ()


async def poll_feed(
    ctx: PipelineContext, feed: FeedConfig, purpose: Purpose, now: datetime
) -> PollOutcome:
    try:
        return await _poll_feed(ctx, feed, purpose, now)
    except Throttled as exc:
        await pause_feed(ctx, feed.name, exc)
        raise


async def pause_feed(ctx: PipelineContext, feed: str, exc: Throttled) -> float:
    """Pause ``feed`` for every worker as the provider asked; the seconds it now lasts."""
    lasts = await FeedPause(ctx.redis, ctx.keys).pause(feed, exc.retry_after_s, str(exc))
    log.warning(kv("poll.throttled", feed=feed, status=exc.status, paused_s=lasts))
    return lasts


async def _poll_feed(
    ctx: PipelineContext, feed: FeedConfig, purpose: Purpose, now: datetime
) -> PollOutcome:
    client = ctx.client_for(feed)
    adapter = client.adapter
    spec = (adapter.live_request() if purpose == "live" else None) or adapter.today_request(
        now.date()
    )
    result = await client.poll(spec)
    report = IngestReport()
    seen_key = ctx.keys.cache(f"seen:{feed.name}:{request_key(spec)}")
    if not result.changed:
        await _touch_seen(ctx, feed, seen_key, now)
        return PollOutcome(feed.name, spec.purpose, False, report)
    async with ctx.pool.connection() as conn:
        prios = await priorities(conn)
    try:
        parsed = adapter.parse_report(result.response)
    except PayloadError as exc:
        await client.forget(spec)  # parse it again next time, it may be fixed
        log.error(kv("poll.malformed", feed=feed.name, error=exc))
        raise
    for error in parsed.errors:
        # one bad match never costs the others; it is reported, not ingested
        log.error(kv("poll.malformed_match", feed=feed.name, error=error))
    if parsed.errors:
        await client.forget(spec)
    batch = parsed.observations
    report = await ingest_observations(
        ctx.pool, feed.name, batch, at=now, priorities=prios, policy=ctx.policy, parallel=PARALLEL
    )
    await ctx.redis.set(seen_key, orjson.dumps([o.provider_match_id for o in batch]), ex=86400)
    outcome = PollOutcome(feed.name, spec.purpose, True, report, malformed=parsed.errors)
    if spec.purpose == "live":
        listed = {o.provider_match_id for o in batch}
        outcome.vanished_fetched = await _fetch_vanished(ctx, feed, listed, now, prios, report)
    return outcome


async def _touch_seen(ctx: PipelineContext, feed: FeedConfig, seen_key: str, now: datetime) -> None:
    raw = await ctx.redis.get(seen_key)
    ids = orjson.loads(raw) if raw else []
    if not ids:
        return
    async with ctx.pool.connection() as conn:
        await observations.touch_latest(conn, feed.name, ids, now)


async def _fetch_vanished(
    ctx: PipelineContext,
    feed: FeedConfig,
    listed: set[str],
    now: datetime,
    prios: dict[str, int],
    report: IngestReport,
) -> int:
    client = ctx.client_for(feed)
    fetched = 0
    # read, then give the connection back: no pooled connection waits on a provider
    async with ctx.pool.connection() as conn:
        in_play = await coverage.in_play_of_feed(conn, feed.name)
    for row in in_play:
        provider_id = row["provider_match_id"]
        if provider_id in listed:
            continue
        spec: RequestSpec = client.adapter.match_request(provider_id)
        response = await client.send(spec)
        try:
            batch = [
                o for o in client.adapter.parse(response) if o.provider_match_id == provider_id
            ]
        except PayloadError as exc:
            log.error(kv("poll.malformed", feed=feed.name, match=provider_id, error=exc))
            continue
        report.merge(
            await ingest_observations(
                ctx.pool, feed.name, batch, at=now, priorities=prios, policy=ctx.policy
            )
        )
        fetched += 1
        log.info(kv("poll.vanished_fetched", feed=feed.name, match=row["match_id"], id=provider_id))
    return fetched
