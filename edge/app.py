"""The Sanic application: ``create_app`` builds it, ``serve`` runs it.

Each worker process opens its own PostgreSQL pool, Redis client, change bus
subscription, caches and rate limiter in ``before_server_start`` and closes
them in ``after_server_stop``. Edge nodes share nothing but PostgreSQL and
Redis, so any number of them can run side by side.

Every route is registered through ``edge.instrument.add_route``: the shared
rate limit by client address (not /health or /metrics) and the metrics
(count and latency by route, method and status) wrap each handler. Every
error, whatever raised it, leaves as the one envelope of ``edge.errors``.

Routes come from ``ROUTES``; ``/`` is left for the live page.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from collections.abc import Callable
from functools import partial
from typing import Any

from sanic import HTTPResponse, Request, Sanic
from sanic.worker.loader import AppLoader

from edge import (
    framework,
    live,
    metrics_share,
    routes_matches,
    routes_ops,
    routes_reference,
    routes_standings,
    sse_routes,
    ws_routes,
)
from edge.bus import ChangeBus
from edge.cache import Caches, match_document
from edge.cors import Cors
from edge.errors import handle_exception
from edge.instrument import count_unmatched
from edge.metrics import REGISTRY
from edge.node_beat import NodeBeat
from edge.ratelimit import RateLimiter
from edge.state import DB_ACQUIRE_TIMEOUT, EdgeApp, EdgeState
from edge.watch import EVERY as WATCH_EVERY
from edge.watch import PipelineWatch
from livescore import logs
from livescore.beats import NODE_BEAT_S
from livescore.config import Settings
from livescore.keys import Keys
from livescore.logs import kv
from livescore.runtime import Endpoints, redis_client
from store.db import connect, open_pool
from store.matches import get_match
from store.writes import Change

log = logging.getLogger("livescore.edge")

#: Largest request body accepted (413 above).
MAX_BODY = 64 * 1024
#: Connections the kernel completes and holds for the edge before it accepts them
#: (capped by net.core.somaxconn). Sanic's default of 100 overflows when a node
#: dies and its clients all reconnect here: the kernel then drops their SYNs and
#: each waits out a retransmit (1 s, 3 s, 7 s, ...) before it is even accepted.
LISTEN_BACKLOG = 4096

#: Route installers, in order: operations, REST, then the WebSocket hub's.
ROUTES: list[Callable[[EdgeApp], None]] = [
    routes_ops.register,
    routes_matches.register,
    routes_reference.register,
    ws_routes.register_ws,  # /ws and the hub's lifecycle (issue 6)
    sse_routes.register_sse,  # /sse: Server-Sent Events through the same hub (issue 13)
    routes_standings.register,  # standings and their push, after the hub starts (issue 16)
    live.register,  # GET /: the live page (issue 6)
]


def create_app(
    settings: Settings,
    endpoints: Endpoints,
    *,
    name: str = "livescore",
    metrics_dir: str | None = None,
) -> EdgeApp:
    """A configured edge app; its resources open when a worker starts serving.

    ``metrics_dir``: the directory this node's workers share their metrics
    through (``edge.metrics_share``), when it has more than one."""
    logs.setup(settings.log_level)
    app: EdgeApp = Sanic(name, configure_logging=False)
    config = app.config
    config.REQUEST_MAX_SIZE = MAX_BODY
    config.ACCESS_LOG = False
    config.MOTD = False
    config.FALLBACK_ERROR_FORMAT = "json"
    config.NOISY_EXCEPTIONS = False
    # X-Forwarded-For is believed only when a proxy in front is configured to set it.
    config.PROXIES_COUNT = settings.proxies_count
    app.ctx.settings = settings
    app.ctx.endpoints = endpoints
    for install in ROUTES:
        install(app)
    app.error_handler.add(Exception, _handle_exception)
    app.before_server_start(_open)
    app.after_server_stop(_close)
    if metrics_dir is not None:
        metrics_share.register(app, metrics_dir)
    return app


async def _open(app: EdgeApp) -> None:
    settings: Settings = app.ctx.settings
    endpoints: Endpoints = app.ctx.endpoints
    keys = Keys(settings.redis_prefix)
    pool = await open_pool(
        endpoints.database_url, min_size=2, max_size=10, name=f"edge-{settings.node_id}"
    )
    redis = redis_client(endpoints.redis_url, socket_timeout=2.0)

    async def load_match(match_id: int) -> tuple[int, bytes]:
        async with pool.connection(timeout=DB_ACQUIRE_TIMEOUT) as conn:
            match = await get_match(conn, match_id)
        return int(match["seq"]), match_document(match)

    caches = Caches(load_match)
    bus = ChangeBus(
        endpoints.redis_url, keys.changes_channel, extra_channels=(keys.standings_channel,)
    )

    def invalidate(change: Change) -> None:
        ts = change.created_at.isoformat() if change.created_at else None
        caches.on_published(change.match_id, change.seq, change.type, change.payload, ts)

    bus.add_listener(invalidate)
    bus.add_gap_listener(caches.clear)
    # a competition's table rules changed (``livescore standings rules``): tables move
    bus.add_channel_listener(keys.standings_channel, lambda _raw: caches.pages.invalidate())
    edge = EdgeState(
        settings=settings,
        endpoints=endpoints,
        keys=keys,
        pool=pool,
        redis=redis,
        bus=bus,
        caches=caches,
        limiter=RateLimiter(redis, keys, settings.rate_limit),
    )
    app.ctx.edge = edge
    # supervised loops, not Sanic's tasks: _close ends them after the last request;
    # each beats, and /health names any that stops beating (edge.health)
    edge.loops.supervise("bus", lambda loop: bus.run(beat=loop.beat), interval=bus.backoff_max)
    edge.watch = PipelineWatch(edge.db, redis, keys)
    await edge.watch.read()  # /health answers from a reading from the first request on
    edge.loops.supervise("watch", edge.watch.run, interval=WATCH_EVERY * 2)
    # this process in `livescore status`'s EDGE NODES (a heartbeat in Redis)
    node_beat = NodeBeat(redis, keys, settings.node_id)
    app.ctx.node_beat = node_beat
    edge.loops.supervise("node_beat", node_beat.run, interval=NODE_BEAT_S)
    REGISTRY.gauge_callback(
        "livescore_cache_matches",
        "Matches cached (each worker's cache counted)",
        lambda: len(caches.matches),
    )
    REGISTRY.readings(
        "livescore_cache_loads_total",
        "Database reads started to fill each cache (reloads included)",
        ("cache",),
        lambda: {(name,): count for name, count in caches.loads().items()},
        kind="counter",
        merge="sum",
    )
    REGISTRY.counter_callback(
        "livescore_ratelimit_failed_open_total",
        "Requests let through because Redis could not be asked",
        lambda: edge.limiter.failed_open,
    )
    log.info(kv("edge.worker_started", node=settings.node_id, prefix=settings.redis_prefix))


async def _close(app: EdgeApp) -> None:
    edge: EdgeState | None = getattr(app.ctx, "edge", None)
    if edge is None:
        return
    await edge.bus.stop()
    await edge.loops.stop()
    node_beat: NodeBeat | None = getattr(app.ctx, "node_beat", None)
    if node_beat is not None:
        await node_beat.remove()
    for task in edge.tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await edge.pool.close()
    await edge.redis.aclose()
    log.info(kv("edge.worker_stopped", node=edge.settings.node_id))


async def _handle_exception(request: Request, exc: Exception) -> HTTPResponse:
    """Errors raised outside any handler (unknown route, 405, 413, ...): counted,
    enveloped, and readable from another origin like every other answer (CORS)."""
    response = await handle_exception(request, exc)
    count_unmatched(request, response.status)
    cors: Cors | None = getattr(request.app.ctx, "cors", None)
    if cors is not None:
        cors.decorate(request, response)
    return response


async def _postgres_answers(dsn: str) -> None:
    conn = await connect(dsn, connect_timeout=5)
    await conn.close()


def serve(
    settings: Settings, endpoints: Endpoints, *, host: str, port: int, workers: int = 1
) -> None:
    """Run the edge until SIGINT/SIGTERM: one process, or a main process and N workers.

    PostgreSQL must answer first: a dead DATABASE_URL is a one-line StoreError
    here rather than a traceback from each worker's listener."""
    asyncio.run(_postgres_answers(endpoints.database_url))
    log.info(kv("edge.serving", host=host, port=port, workers=workers, node=settings.node_id))
    listen: dict[str, Any] = dict(
        host=host,
        port=port,
        access_log=False,
        motd=False,
        backlog=LISTEN_BACKLOG,
        protocol=framework.Door,  # /ws upgrades are taken before Sanic's HTTP machinery
    )
    if workers == 1:
        app = create_app(settings, endpoints)
        app.run(single_process=True, **listen)
        return
    # the workers' shared metrics: every scrape shows the node's totals
    metrics_dir = tempfile.mkdtemp(prefix="livescore-metrics-")
    try:
        loader = AppLoader(
            factory=partial(create_app, settings, endpoints, metrics_dir=metrics_dir)
        )
        app = loader.load()
        app.prepare(workers=workers, **listen)
        Sanic.serve(primary=app, app_loader=loader)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
