"""The SAQ jobs. Thin: each reads its context and calls one pipeline function.

* ``tick`` (cron, every 5 s, unique per tick across workers): for each
  enabled feed that is neither paused nor being polled, decides whether its
  next poll slot is due (``pipeline.cadence``) and enqueues ``poll`` with key
  ``poll:{feed}:{purpose}:{slot}``.
* ``poll``: skips a paused feed, takes the feed's in-flight lock (a feed never
  has two polls in flight; a poll that finds it held skips without claiming
  its slot, so the next tick retries it), claims its slot in Redis
  (``SET NX``), so even a retried or duplicated job never polls a feed twice
  for one slot, then polls. A provider that says "wait" (``Throttled``)
  pauses the feed for every worker (``pipeline.budget.FeedPause``): no job
  ever sleeps on a provider. A worker runs at most ``concurrency -
  RESERVED_SLOTS`` polls at once, so ticks, sweeps and automation always find
  a free slot.
* ``sweep`` (cron, every 15 s): reconciles covered in-play matches (a feed
  that went quiet loses authority, a match with no fresh feed is flagged
  stale), applies overdue status automation and schedules the upcoming
  ``auto`` jobs.
* ``auto``: one scheduled status transition of an uncovered match (idempotent).
* ``webhook``: one endpoint's due webhook deliveries (``pipeline.webhooks``),
  enqueued by the worker's dispatch loop with key ``webhook:{endpoint}``.
"""

from __future__ import annotations

import logging
import math
from datetime import timedelta
from typing import Any

from redis.exceptions import RedisError
from saq.types import Context

from livescore import clock, feed_health
from livescore.errors import StoreError
from livescore.logs import kv
from livescore.model import MatchStatus, Period
from pipeline import automation, cadence
from pipeline.budget import FeedInFlight, FeedPause
from pipeline.context import PipelineContext
from pipeline.ingest import IngestReport, reconcile_matches
from pipeline.polling import poll_feed
from pipeline.webhooks import WebhookSender
from providers.errors import (
    BudgetExhausted,
    CredentialsRejected,
    MissingSecret,
    PayloadError,
    ProviderError,
    ProviderUnavailable,
    Throttled,
)
from store import coverage
from store.feeds import get_feed, list_feeds, priorities
from store.writes import apply_change

log = logging.getLogger("livescore.pipeline.jobs")

#: how far ahead the sweep schedules automation jobs
AUTOMATION_HORIZON = timedelta(seconds=90)
#: a match about to kick off makes its feeds poll at the live cadence
SOON = timedelta(minutes=15)
#: a poll job's timeout; the feed's in-flight lock outlives it a little (a dead worker's lock)
POLL_TIMEOUT_S = 120
#: job slots of each worker that polls never take (ticks, sweeps, automation)
RESERVED_SLOTS = 2


def pipeline(ctx: Context) -> PipelineContext:
    pctx: PipelineContext = ctx["pipeline"]  # type: ignore[typeddict-item]
    return pctx


async def tick(ctx: Context) -> dict[str, Any]:
    pctx = pipeline(ctx)
    queue = ctx["worker"].queue
    now = clock.now()
    enqueued: list[str] = []
    paused = FeedPause(pctx.redis, pctx.keys)
    in_flight = _in_flight(pctx)
    async with pctx.pool.connection() as conn:
        feeds = await list_feeds(conn, enabled_only=True)
        for feed in feeds:
            if await paused.remaining(feed.name) > 0 or await in_flight.held(feed.name):
                continue  # the provider asked us to wait, or a poll is still running
            hot = await coverage.feed_is_hot(conn, feed.name, now, SOON)
            budget = pctx.client_for(feed).budget_per_minute
            wanted: list[tuple[str, float]] = [
                ("today", cadence.interval(feed, hot=False, budget_per_minute=budget))
            ]
            if hot:
                wanted.append(("live", cadence.interval(feed, hot=True, budget_per_minute=budget)))
            for purpose, seconds in wanted:
                slot = cadence.slot(now, seconds)
                key = f"poll:{feed.name}:{purpose}:{slot}"
                if await pctx.redis.exists(pctx.keys.lock(key)):
                    continue  # this slot was polled already
                job = await queue.enqueue(
                    "poll",
                    key=key,
                    feed=feed.name,
                    purpose=purpose,
                    slot=slot,
                    timeout=POLL_TIMEOUT_S,
                    retries=3,
                    ttl=3600,
                )
                if job is not None:
                    enqueued.append(key)
    return {"enqueued": enqueued}


def _in_flight(pctx: PipelineContext) -> FeedInFlight:
    return FeedInFlight(pctx.redis, pctx.keys, ttl_s=POLL_TIMEOUT_S + 10)


async def poll(ctx: Context, *, feed: str, purpose: str, slot: int) -> dict[str, Any]:
    pctx = pipeline(ctx)
    left = await FeedPause(pctx.redis, pctx.keys).remaining(feed)
    if left > 0:
        return {"skipped": f"feed paused for {left:.1f}s more (the provider asked us to wait)"}
    limit = max(ctx["worker"].concurrency - RESERVED_SLOTS, 1)
    if pctx.polls_running + pctx.webhooks_running >= limit:
        busy = f"this worker already runs {limit} polls and webhook jobs"
        return {"skipped": f"{busy}; the next tick retries"}
    in_flight = _in_flight(pctx)
    token = await in_flight.acquire(feed)
    if token is None:
        return {"skipped": "another poll of this feed is in flight; the next tick retries"}
    pctx.polls_running += 1
    try:
        return await _poll_locked(ctx, pctx, feed=feed, purpose=purpose, slot=slot)
    finally:
        pctx.polls_running -= 1
        await in_flight.release(feed, token)


async def _poll_locked(
    ctx: Context, pctx: PipelineContext, *, feed: str, purpose: str, slot: int
) -> dict[str, Any]:
    job = ctx["job"]
    # The claim names this job by key AND enqueue time: a retry of this job keeps
    # both and may poll again, but another job for the slot may not, even under
    # the same key (SAQ dedupes a key only while its job is unfinished, so a
    # later tick in the same slot can enqueue it afresh).
    me = f"{job.key}@{job.queued}"
    claim = pctx.keys.lock(f"poll:{feed}:{purpose}:{slot}")
    if not await pctx.redis.set(claim, me, nx=True, ex=3600):
        owner = await pctx.redis.get(claim)
        if owner is None or owner.decode() != me:
            return {"skipped": "slot already polled"}
    async with pctx.pool.connection() as conn:
        config = await get_feed(conn, feed)
    if not config.enabled:
        return {"skipped": "feed disabled"}
    now = clock.now()
    try:
        outcome = await poll_feed(pctx, config, "live" if purpose == "live" else "today", now)
    except Throttled as exc:  # poll_feed paused the feed for every worker
        await _record(pctx, feed, "throttled", exc)
        lasts = await FeedPause(pctx.redis, pctx.keys).remaining(feed)
        return {"paused": round(lasts, 1), "error": str(exc)}
    except BudgetExhausted as exc:
        # not a poll: no request was made (the feed's budget is spent for now)
        log.warning(kv("poll.budget_exhausted", feed=feed, retry_after_s=exc.retry_after_s))
        return {"skipped": str(exc)}
    except (CredentialsRejected, MissingSecret, PayloadError) as exc:
        # retrying will not help: say so loudly and move on
        log.error(kv("poll.failed", feed=feed, error=exc))
        await _record(pctx, feed, error_kind(exc), exc)
        return {"failed": str(exc)}
    except ProviderError as exc:
        log.warning(kv("poll.provider_error", feed=feed, error=exc))
        await _record(pctx, feed, error_kind(exc), exc)
        return {"failed": str(exc)}
    except Exception as exc:
        # recorded, then raised for SAQ to retry and log with its traceback
        await _record(pctx, feed, "internal", exc)
        raise
    await _record(pctx, feed, None, None)
    report = outcome.report
    log.info(
        kv(
            "poll.done",
            feed=feed,
            purpose=outcome.purpose,
            changed=outcome.changed,
            observations=report.observations,
            changes=len(report.changes),
            created=report.matches_created,
            rejected=len(report.rejected),
            vanished=outcome.vanished_fetched,
        )
    )
    return {"changes": len(report.changes), "observations": report.observations}


def error_kind(exc: ProviderError) -> str:
    """The kind a failed poll is counted under (``livescore.feed_health``)."""
    if isinstance(exc, Throttled):
        return "throttled"
    if isinstance(exc, CredentialsRejected):
        return "credentials"
    if isinstance(exc, MissingSecret):
        return "missing_secret"
    if isinstance(exc, PayloadError):
        return "payload"
    if isinstance(exc, ProviderUnavailable):
        return "unavailable"
    return "provider"


async def _record(
    pctx: PipelineContext, feed: str, kind: str | None, exc: BaseException | None
) -> None:
    """The poll's outcome in the feed's record; Redis trouble costs the record, not the poll."""
    text = "" if exc is None else f"{type(exc).__name__}: {exc}"
    try:
        await feed_health.record_poll(pctx.redis, pctx.keys, feed, error_kind=kind, error=text)
    except (RedisError, OSError) as record_exc:
        log.warning(kv("poll.record_failed", feed=feed, error=repr(record_exc)))


async def sweep(ctx: Context) -> dict[str, Any]:
    pctx = pipeline(ctx)
    queue = ctx["worker"].queue
    now = clock.now()
    report = IngestReport()
    duration = timedelta(seconds=pctx.settings.match_duration_s)
    applied = scheduled = 0
    async with pctx.pool.connection() as conn:
        prios = await priorities(conn)
        hot = await coverage.covered_hot_matches(conn)
        # batched (one transaction per chunk); one match (deleted meanwhile, refused by
        # a rule) never stops the sweep: a failing chunk is redone match by match
        for match_id, exc in await reconcile_matches(
            pctx.pool, hot, at=now, priorities=prios, policy=pctx.policy, report=report
        ):
            log.error(kv("sweep.reconcile_failed", match=match_id, error=exc))
        for row in await coverage.uncovered_due(conn, now + AUTOMATION_HORIZON):
            status = MatchStatus(row["status"])
            period = Period(row["clock_period"]) if row["clock_period"] else None
            times = (row["start_time"], row["end_time"], duration)
            target = automation.transition(status, *times, now, period)
            if target is not None:
                late = automation.clock_at(target, *times, now)
                try:
                    changes = await apply_change(
                        conn, row["id"], automation.patch_for(target, status, clock=late)
                    )
                except StoreError as exc:
                    log.error(kv("sweep.automation_failed", match=row["id"], error=exc))
                    continue
                applied += len(changes)
                continue
            when = automation.due_at(status, *times, period)
            goal = automation.next_status(status, *times, period)
            if when is None or goal is None:
                continue
            # the second half's kickoff is a second "live": its own key
            step = "second-half" if status is MatchStatus.HALFTIME else goal.value
            job = await queue.enqueue(
                "auto",
                key=f"auto:{row['id']}:{step}",
                # SAQ schedules in whole seconds: round up, never fire before it is due
                scheduled=math.ceil(when.timestamp()),
                match_id=row["id"],
                target=goal.value,
                timeout=30,
                retries=3,
            )
            scheduled += job is not None
    return {"reconciled": len(report.changes), "automated": applied, "scheduled": scheduled}


async def auto(ctx: Context, *, match_id: int, target: str) -> dict[str, Any]:
    pctx = pipeline(ctx)
    goal = MatchStatus(target)
    async with pctx.pool.connection() as conn:
        changes = await apply_change(conn, match_id, automation.patch_for(goal))
    if changes:
        log.info(kv("automation.applied", match=match_id, status=goal.value))
    return {"changes": len(changes)}


async def webhook(ctx: Context, *, endpoint_id: int) -> dict[str, Any]:
    """Send one endpoint's due webhook deliveries (``pipeline.webhooks``). At most
    half the slots polls may use run these, so a hanging receiver never takes
    the slots polls, ticks and sweeps need; a skipped job is enqueued again by
    the dispatcher within a second."""
    pctx = pipeline(ctx)
    sender: WebhookSender = ctx["webhooks"]  # type: ignore[typeddict-item]
    slots = max(ctx["worker"].concurrency - RESERVED_SLOTS, 1)
    if (
        pctx.webhooks_running >= max(slots // 2, 1)
        or pctx.polls_running + pctx.webhooks_running >= slots
    ):
        return {"skipped": "this worker's webhook slots are busy; the dispatcher retries"}
    pctx.webhooks_running += 1
    try:
        return await sender.run(endpoint_id)
    finally:
        pctx.webhooks_running -= 1


FUNCTIONS = [
    ("tick", tick),
    ("poll", poll),
    ("sweep", sweep),
    ("auto", auto),
    ("webhook", webhook),
]
