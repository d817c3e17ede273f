"""GET /api/competitions/{id}/standings: the league table computed from our own
results (``livescore.standings``), and the ``standings:update`` push's lifecycle.

Served like the other list pages (``edge.cache.PageCache``): pre-encoded with an
ETag (304 on If-None-Match), read once for everybody asking meanwhile, stale
after any published change (a score anywhere may move a table) or the page TTL;
unlike them, a table a change made stale is never served while it reloads: a
client that got the ``standings:update`` of a goal reads that table or a newer one.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import orjson
from sanic import HTTPResponse, Request, Sanic

from edge.cache import Entry
from edge.errors import BadRequest, NotFoundError
from edge.instrument import add_route
from edge.responses import cached_json
from edge.standings_push import StandingsPush, standings_frame
from edge.state import DB_ERRORS, EdgeApp, EdgeState, state
from edge.validation import MAX_ID, int_param, query_params
from edge.ws_client import Session
from livescore import clock
from livescore.errors import NotFound
from livescore.logs import kv
from store.standings import standings_input

log = logging.getLogger("livescore.edge.standings")

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


def page_key(competition_id: int, query: str = "") -> str:
    return f"/api/competitions/{competition_id}/standings?{query}"


async def table_page(
    edge: EdgeState, competition_id: int, season: int | None, live: bool, query: str = ""
) -> Entry:
    """The standings page (``{"data": ...}``) from the page cache, read once for
    everybody asking meanwhile. NotFound: no such competition."""

    async def load() -> bytes:
        async with edge.db() as conn:
            found = await standings_input(conn, competition_id, season, clock.now())
        return orjson.dumps({"data": found.document(live=live)})

    # never the table from before a change: the push of the one after it may be out already
    return await edge.caches.page(page_key(competition_id, query), load, serve_stale=False)


async def standings_route(request: Request, competition_id: int) -> HTTPResponse:
    if not 1 <= competition_id <= MAX_ID:
        raise NotFoundError(
            f"competition {competition_id} not found", details={"kind": "competition"}
        )
    edge = state(request)
    entry = edge.caches.cached_page(page_key(competition_id, request.query_string))
    if entry is None:
        params = query_params(request, PARAMS)
        season = int_param(params, "season", low=1900, high=2200)
        entry = await table_page(
            edge, competition_id, season, live_param(params), request.query_string
        )
    return cached_json(request, entry.body, entry.etag)


async def send_current_table(edge: EdgeState, session: Session, competition_id: int) -> None:
    """Right after a competition subscription (``/ws`` or ``/sse``): the current
    table to that client, as ``GET .../standings`` serves it, so a page opened
    now shows it at once (a ``standings:update`` with ``cause`` null)."""
    try:
        entry = await table_page(edge, competition_id, None, True)
    except (*DB_ERRORS, NotFound) as exc:
        log.warning(kv("standings.subscribe_read_failed", competition=competition_id,
                       error=repr(exc), hint="the client can read GET .../standings"))  # fmt: skip
        return
    session.send_payload(standings_frame(orjson.loads(entry.body)["data"], None))


async def start_push(app: Sanic[Any, Any]) -> None:
    """After the hub started (``edge.ws_routes.start_hub``): follow the bus for it."""
    hub = getattr(app.ctx, "ws_hub", None)
    if hub is None:
        return
    edge = app.ctx.edge
    push = StandingsPush(hub, edge.db)
    edge.bus.add_listener(push.on_message)
    edge.bus.add_channel_listener(edge.keys.standings_channel, push.on_rules)
    hub.on_competition_subscribed = partial(send_current_table, edge)
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
