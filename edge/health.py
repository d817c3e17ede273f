"""GET /health: is this node able to serve, and is anything stuck.

Checks PostgreSQL (and counts stale live matches), Redis (and reads the SAQ
queue's depth), whether this worker's change bus is subscribed, this
worker's supervised loops (``livescore.supervise``), and what the pipeline
watch last read (``edge.watch``): the relay's backlog and held matches, the
workers' loops and the cron tick.

* 200 ``"status": "ok"``: nothing wrong.
* 200 ``"status": "degraded"``: serving, but a match is held by the relay
  (``checks.relay.held``), or the pipeline could not be read (shown in
  ``problems``).
* 503 ``"status": "unavailable"``: PostgreSQL or Redis is down, a loop of
  this worker or of a worker process missed its heartbeat, the cron tick is
  late while workers run, or the relay has left a change unpublished for
  longer than ``LIVESCORE_RELAY_STALL_AFTER``. The ``error`` member (the
  error envelope) names each reason in ``details.problems``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from redis.exceptions import RedisError
from sanic import HTTPResponse, Request

from edge.responses import JSON
from edge.state import DB_ERRORS, EdgeState, state
from edge.watch import Reading
from livescore import beats, clock
from livescore.logs import kv
from store.coverage import stale_count

log = logging.getLogger("livescore.edge.health")

CHECK_TIMEOUT = 2.0


def saq_queued_key(queue_name: str) -> str:
    """The Redis list where SAQ 0.26 keeps queued job ids (``saq/queue/redis.py``)."""
    return f"saq:{queue_name}:queued"


async def _postgres(edge: EdgeState) -> tuple[dict[str, Any], int | None]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(CHECK_TIMEOUT), edge.db() as conn:
            stale = await stale_count(conn)
    except DB_ERRORS as exc:
        log.warning(kv("health.postgres_down", error=repr(exc)))
        return {"ok": False, "error": type(exc).__name__}, None
    ms = round((time.perf_counter() - started) * 1000, 2)
    return {"ok": True, "latencyMs": ms}, stale


async def _redis(edge: EdgeState) -> tuple[dict[str, Any], dict[str, Any]]:
    name = edge.keys.queue_name
    started = time.perf_counter()
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            await edge.redis.ping()  # type: ignore[misc]  # redis-py's sync/async union
            depth = int(await edge.redis.llen(saq_queued_key(name)))  # type: ignore[misc]
    except (RedisError, OSError, TimeoutError) as exc:
        log.warning(kv("health.redis_down", error=repr(exc)))
        down = {"ok": False, "error": type(exc).__name__}
        return down, {"ok": False, "name": name, "depth": None}
    ms = round((time.perf_counter() - started) * 1000, 2)
    return {"ok": True, "latencyMs": ms}, {"ok": True, "name": name, "depth": depth}


def _loops(edge: EdgeState, problems: list[str]) -> dict[str, Any]:
    reports = {}
    for loop in edge.loops.reports():
        reports[loop.name] = loop.to_json()
        if not loop.ok:
            problems.append(
                f"loop {loop.name} of this worker: no heartbeat for {loop.age:.1f}s"
                + (f" (last error: {loop.last_error})" if loop.last_error else "")
            )
    return reports


def _relay(edge: EdgeState, reading: Reading, problems: list[str]) -> dict[str, Any]:
    stall_after = edge.settings.relay_stall_after_s
    if reading.backlog is None:
        return {"ok": None, "stallAfterSeconds": stall_after}
    age = reading.backlog.oldest_age_s
    stalled = age is not None and age > stall_after
    if stalled:
        problems.append(
            f"relay stalled: {reading.backlog.count} change(s) unpublished, the oldest for "
            f"{age:.1f}s (more than {stall_after:g}s); is a `livescore worker` running?"
        )
    return {
        "ok": not stalled,
        "backlog": reading.backlog.count,
        "oldestUnpublishedSeconds": None if age is None else round(age, 2),
        "stallAfterSeconds": stall_after,
        "held": [held.to_json() for held in reading.backlog.held],
    }


def _workers(reading: Reading, now: float, problems: list[str]) -> dict[str, Any]:
    if reading.workers is None:
        return {"ok": None, "processes": None, "tickLastRunSecondsAgo": None}
    processes = []
    for worker in reading.workers:
        stuck = worker.stuck_loops(now)
        for name in stuck:
            problems.append(f"loop {name} of {worker.id}: no heartbeat")
        processes.append({"id": worker.id, "ok": not stuck, "loops": worker.loops})
    tick_late = reading.tick_stuck(now)
    if tick_late:
        problems.append(
            "cron tick late: workers run but the tick did not run for "
            f"{beats.TICK_STUCK_AFTER_S:g}s (job slots all busy?)"
        )
    tick_age = None if reading.tick_at is None else round(now - reading.tick_at, 2)
    return {
        "ok": not tick_late and all(p["ok"] for p in processes),
        "processes": processes,
        "tickLastRunSecondsAgo": tick_age,
    }


async def report(edge: EdgeState) -> tuple[int, dict[str, Any]]:
    (pg, stale), (redis, queue) = await asyncio.gather(_postgres(edge), _redis(edge))
    problems: list[str] = []
    down = [name for name, check in (("postgres", pg), ("redis", redis)) if not check["ok"]]
    if down:
        problems.append(f"{' and '.join(down)} unreachable from this node")
    reading = edge.watch.reading if edge.watch is not None else Reading()
    checks: dict[str, Any] = {
        "postgres": pg,
        "redis": redis,
        "queue": queue,
        "bus": {"ok": edge.bus.connected},
        "loops": _loops(edge, problems),
        "relay": _relay(edge, reading, problems),
        "workers": _workers(reading, time.time(), problems),
    }
    body: dict[str, Any] = {
        "status": "ok",
        "node": edge.settings.node_id,
        "time": clock.now().isoformat(),
        "checks": checks,
        "staleMatches": stale,
    }
    if problems:
        body["status"] = "unavailable"
        body["error"] = {
            "code": "dependency_down" if down else "stuck",
            "message": "; ".join(problems),
            "details": {"down": down, "problems": problems},
        }
        return 503, body
    notes = [f"{name}: {error}" for name, error in reading.errors.items()]
    held = checks["relay"].get("held") or []
    if held:
        notes.append(
            f"{len(held)} match(es) held by the relay (a change could not be published): "
            + ", ".join(str(h["matchId"]) for h in held)
            + "; see `livescore relay held`"
        )
    if notes:
        body["status"] = "degraded"
        body["problems"] = notes
    return 200, body


async def health_route(request: Request) -> HTTPResponse:
    status, body = await report(state(request))
    return HTTPResponse(
        orjson.dumps(body), status=status, headers={"Cache-Control": "no-store"}, content_type=JSON
    )
