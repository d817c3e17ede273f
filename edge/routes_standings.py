"""GET /api/competitions/{id}/standings: the league table computed from our own
results (``livescore.standings``), and the ``standings:update`` push's lifecycle.

Served like the other list pages (``edge.cache.PageCache``): pre-encoded with an
ETag (304 on If-None-Match), read once for everybody asking meanwhile, stale
after any published change (a score anywhere may move a table) or the page TTL.
"""

from __future__ import annotations

from typing import Any

import orjson
from sanic import HTTPResponse, Request, Sanic

from edge.errors import BadRequest, NotFoundError
from edge.instrument import add_route
from edge.responses import cached_json
from edge.standings_push import StandingsPush
from edge.state import EdgeApp, state
from edge.validation import MAX_ID, int_param, query_params
from livescore import clock
from livescore.standings import document
from store.standings import standings_input

PARAMS = ("season", "live")


def live_param(params: dict[str, str]) -> bool:
    raw = params.get("live")
    if raw is None or raw == "true":
        return True
    if raw == "false":
        return False
    raise BadRequest(
        f"live: must be true or false, got {raw[:40]!r}",
        code="invalid_parameter",
        details={"parameter": "live"},
    )


async def standings_route(request: Request, competition_id: int) -> HTTPResponse:
    if not 1 <= competition_id <= MAX_ID:
        raise NotFoundError(
            f"competition {competition_id} not found", details={"kind": "competition"}
        )
    edge = state(request)
    key = f"/api/competitions/{competition_id}/standings?{request.query_string}"
    entry = edge.caches.cached_page(key)
    if entry is None:
        params = query_params(request, PARAMS)
        season = int_param(params, "season", low=1900, high=2200)
        live = live_param(params)

        async def load() -> bytes:
            async with edge.db() as conn:
                found = await standings_input(conn, competition_id, season, clock.now())
            data = document(
                found.competition,
                found.season,
                found.seasons,
                found.rules,
                found.results,
                live=live,
            )
            return orjson.dumps({"data": data})

        entry = await edge.caches.page(key, load)
    return cached_json(request, entry.body, entry.etag)


async def start_push(app: Sanic[Any, Any]) -> None:
    """After the hub started (``edge.ws_routes.start_hub``): follow the bus for it."""
    hub = getattr(app.ctx, "ws_hub", None)
    if hub is None:
        return
    edge = app.ctx.edge
    push = StandingsPush(hub, edge.db)
    edge.bus.add_listener(push.on_message)
    app.ctx.standings_push = push


async def stop_push(app: Sanic[Any, Any]) -> None:
    push: StandingsPush | None = getattr(app.ctx, "standings_push", None)
    if push is not None:
        await push.stop()


def register(app: EdgeApp) -> None:
    add_route(
        app,
        standings_route,
        "/api/competitions/<competition_id:int>/standings",
        ["GET"],
        name="standings",
        query=PARAMS,
    )
    app.after_server_start(start_push)
    app.before_server_stop(stop_push)
