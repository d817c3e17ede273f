"""``livescore worker``: a SAQ worker on Redis plus the outbox relay.

Several workers may run side by side: cron ticks are unique per tick (SAQ),
polls dedupe on their slot key and claim, observations on their fingerprint,
and only one relay publishes at a time (advisory lock). Webhook jobs are
enqueued by a dispatch loop (``pipeline.webhooks.Dispatcher``) keyed per
endpoint, so one endpoint is sent for by one job at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from redis.exceptions import RedisError
from saq import CronJob, Queue, Worker
from saq.types import Context

from livescore import beats
from livescore.config import Settings
from livescore.keys import Keys
from livescore.logs import kv
from livescore.reachable import wait_for_redis
from livescore.runtime import Endpoints
from livescore.supervise import Loop, Loops
from livescore.waiting import wait_event
from pipeline.context import PipelineContext
from pipeline.jobs import FUNCTIONS, sweep, tick
from pipeline.relay import Relay, lag_summary
from pipeline.standings_check import CHECK_CRON as STANDINGS_CRON
from pipeline.standings_check import standings_check
from pipeline.webhooks import DISPATCH_EVERY_S, Dispatcher, WebhookSender

log = logging.getLogger("livescore.pipeline.worker")


def make_queue(redis_url: str, keys: Keys) -> Queue:
    return Queue.from_url(redis_url, name=keys.queue_name)


def build_worker(
    settings: Settings,
    endpoints: Endpoints,
    queue: Queue,
    *,
    relay: bool = True,
    concurrency: int = 8,
    burst: bool = False,
    cron: bool = True,
    shutdown_grace_s: int = 10,
) -> Worker[Context]:
    """A SAQ worker running the pipeline's jobs (and the relay unless ``relay=False``).

    ``shutdown_grace_s``: how long a stop waits for running jobs; an idle worker
    stops within about a second (``PipelineWorker``).
    """
    stop = asyncio.Event()
    loops = Loops()
    ident = beats.process_id("worker")
    started = time.time()

    async def startup(ctx: Context) -> None:
        pctx = await PipelineContext.open(settings, endpoints)
        ctx["pipeline"] = pctx  # type: ignore[typeddict-unknown-key]
        ctx["loops"] = loops  # type: ignore[typeddict-unknown-key]
        sender = WebhookSender(pctx.pool, settings)
        ctx["webhooks"] = sender  # type: ignore[typeddict-unknown-key]
        dispatcher = Dispatcher(pctx.pool, queue, settings)
        if cron:

            async def dispatch(loop: Loop) -> None:
                await dispatcher.run(stop, loop)

            loops.supervise("webhooks", dispatch, interval=DISPATCH_EVERY_S * 4)
        if relay:
            runner = Relay(
                pctx.pool,
                endpoints.database_url,
                pctx.redis,
                pctx.keys,
                on_deliveries=dispatcher.wake,
            )
            ctx["relay"] = runner  # type: ignore[typeddict-unknown-key]

            async def run_relay(loop: Loop) -> None:
                runner.beat = loop.beat
                await runner.run(stop)

            loops.supervise("relay", run_relay, interval=runner.heartbeat_s * 2)

        async def heartbeat(loop: Loop) -> None:
            # this process's loops, for every edge node's /health (livescore.beats),
            # and its relay's part for `livescore status`
            while not stop.is_set():
                runner: Relay | None = ctx.get("relay")  # type: ignore[assignment]
                extra = {
                    "relayLeader": bool(runner and runner.is_leader),
                    "relayLag": lag_summary(runner.lags) if runner else None,
                }
                try:
                    await beats.write_process(
                        pctx.redis, pctx.keys, ident, "worker", started, loops, extra
                    )
                except (RedisError, OSError) as exc:
                    log.warning(kv("worker.heartbeat_failed", error=repr(exc)))
                loop.beat()
                await wait_event(stop, beats.PROCESS_BEAT_S)

        loops.supervise("heartbeat", heartbeat, interval=beats.PROCESS_BEAT_S)
        log.info(kv("worker.started", queue=queue.name, relay=relay, id=ident))

    async def before_process(ctx: Context) -> None:
        job = ctx.get("job")
        pctx: PipelineContext | None = ctx.get("pipeline")  # type: ignore[assignment]
        if job is not None and job.function == "tick" and pctx is not None:
            try:
                await beats.mark_tick(pctx.redis, pctx.keys)
            except (RedisError, OSError) as exc:
                log.warning(kv("worker.tick_beat_failed", error=repr(exc)))

    async def after_process(ctx: Context) -> None:
        # a job attempt that raised, counted for `livescore status` (failed in the last hour)
        job = ctx.get("job")
        pctx: PipelineContext | None = ctx.get("pipeline")  # type: ignore[assignment]
        if job is None or pctx is None or ctx.get("exception") is None:
            return
        try:
            await beats.mark_failed_job(pctx.redis, pctx.keys, job.id, job.attempts)
        except (RedisError, OSError) as exc:
            log.warning(kv("worker.failed_job_mark_failed", job=job.id, error=repr(exc)))

    async def shutdown(ctx: Context) -> None:
        stop.set()
        try:
            async with asyncio.timeout(10):  # not wait_for: see livescore.waiting
                for name in list(loops.loops):
                    task = loops.loops[name].task
                    if task is not None:
                        with contextlib.suppress(asyncio.CancelledError):
                            await asyncio.shield(task)
        except TimeoutError:
            log.warning(kv("worker.loop_stop_timeout", seconds=10))
        await loops.stop()
        sender: WebhookSender | None = ctx.get("webhooks")  # type: ignore[assignment]
        if sender is not None:
            await sender.aclose()
        pctx: PipelineContext | None = ctx.get("pipeline")  # type: ignore[assignment]
        if pctx is not None:
            with contextlib.suppress(RedisError, OSError):
                await beats.remove_process(pctx.redis, pctx.keys, ident)
            await pctx.close()
        log.info(kv("worker.stopped", queue=queue.name))

    cron_jobs: list[CronJob[Context]] = []
    if cron:
        cron_jobs = [
            CronJob(tick, cron="* * * * * */5", timeout=30, retries=1),
            CronJob(sweep, cron="* * * * * */15", timeout=60, retries=1),
            # the provider standings cross-check (issue 16): low cadence, never writes a table
            CronJob(standings_check, cron=STANDINGS_CRON, timeout=300, retries=0),
        ]
    functions: Any = FUNCTIONS
    return PipelineWorker(
        queue,
        functions,
        cron_jobs=cron_jobs,
        startup=startup,
        shutdown=shutdown,
        before_process=before_process,
        after_process=after_process,
        concurrency=concurrency,
        burst=burst,
        # not 0 (block until a job comes): an idle slot must see a stop within a second
        dequeue_timeout=DEQUEUE_TIMEOUT_S,
        shutdown_grace_period_s=shutdown_grace_s,
    )


#: How long an idle job slot waits for a job before it looks whether the worker stops.
DEQUEUE_TIMEOUT_S = 1.0


class PipelineWorker(Worker[Context]):
    """SAQ's worker, except that a stop does not wait out SAQ's own upkeep loops.

    SAQ counts them (asleep between abort checks, schedules, sweeps) against the
    shutdown grace with the running jobs, so every stop took the whole grace and
    logged "Some tasks did not finish within the shutdown grace period". Here they
    are cancelled first: the grace is spent on running jobs only."""

    _upkeep_tasks: list[asyncio.Task[None]]

    async def upkeep(self) -> list[asyncio.Task[None]]:
        self._upkeep_tasks = await super().upkeep()
        return []

    async def stop(self) -> None:
        self.event.set()
        upkeep = getattr(self, "_upkeep_tasks", [])
        self._upkeep_tasks = []
        for task in upkeep:
            task.cancel()
        await asyncio.gather(*upkeep, return_exceptions=True)
        await super().stop()


async def run_worker(settings: Settings, endpoints: Endpoints) -> None:
    """Run until SIGINT/SIGTERM; until Redis answers, wait (one log line per try)."""
    await wait_for_redis(endpoints.redis_url)
    queue = make_queue(endpoints.redis_url, Keys(settings.redis_prefix))
    worker = build_worker(settings, endpoints, queue)
    try:
        await worker.start()
    finally:
        await queue.disconnect()
