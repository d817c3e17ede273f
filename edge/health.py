"""GET /health: is this node able to serve, and what does it depend on.

Checks PostgreSQL (and counts stale live matches), Redis (and reads the SAQ
queue's depth), and whether this worker's change bus is subscribed. 200
when PostgreSQL and Redis answer, else 503 with the same report plus the
error envelope's ``error`` member naming what is down.
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
from livescore import clock
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


async def report(edge: EdgeState) -> tuple[int, dict[str, Any]]:
    (pg, stale), (redis, queue) = await asyncio.gather(_postgres(edge), _redis(edge))
    body: dict[str, Any] = {
        "status": "ok",
        "node": edge.settings.node_id,
        "time": clock.now().isoformat(),
        "checks": {
            "postgres": pg,
            "redis": redis,
            "queue": queue,
            "bus": {"ok": edge.bus.connected},
        },
        "staleMatches": stale,
    }
    down = [name for name, check in (("postgres", pg), ("redis", redis)) if not check["ok"]]
    if not down:
        return 200, body
    body["status"] = "unavailable"
    body["error"] = {
        "code": "dependency_down",
        "message": f"{' and '.join(down)} unreachable from this node",
        "details": {"down": down},
    }
    return 503, body


async def health_route(request: Request) -> HTTPResponse:
    status, body = await report(state(request))
    return HTTPResponse(
        orjson.dumps(body), status=status, headers={"Cache-Control": "no-store"}, content_type=JSON
    )
