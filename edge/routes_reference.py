"""/api/competitions and /api/teams: reference data.

Served like list pages (``edge.cache.PageCache``): pre-encoded with an ETag,
read once for everybody asking meanwhile, from a cache of their own
(``Caches.reference``) that no change of a match touches (a score moves no
reference list). A list goes stale when this node creates a match (which may
create a competition or team) and otherwise after ``edge.cache.REFERENCE_TTL``,
the bound for one created elsewhere (another node, the pipeline).
``livescore_cache_loads_total{cache="reference"}`` counts the reads.
"""

from __future__ import annotations

import orjson
from sanic import HTTPResponse, Request

from edge.instrument import add_route
from edge.responses import cached_json
from edge.state import EdgeApp, state
from edge.validation import id_param, query_params
from store.reference import list_competitions, list_teams

TEAMS_PARAMS = ("competition",)


async def competitions_route(request: Request) -> HTTPResponse:
    edge = state(request)
    key = "/api/competitions"
    entry = edge.caches.reference.cached(key)
    if entry is None:

        async def load() -> bytes:
            async with edge.db() as conn:
                return orjson.dumps({"data": await list_competitions(conn)})

        entry = await edge.caches.reference.get(key, load)
    return cached_json(request, entry.body, entry.etag)


async def teams_route(request: Request) -> HTTPResponse:
    edge = state(request)
    key = "/api/teams?" + request.query_string
    entry = edge.caches.reference.cached(key)
    if entry is None:
        competition = id_param(query_params(request, TEAMS_PARAMS), "competition")

        async def load() -> bytes:
            async with edge.db() as conn:
                return orjson.dumps({"data": await list_teams(conn, competition)})

        entry = await edge.caches.reference.get(key, load)
    return cached_json(request, entry.body, entry.etag)


def register(app: EdgeApp) -> None:
    add_route(app, competitions_route, "/api/competitions", ["GET"], name="competitions")
    add_route(app, teams_route, "/api/teams", ["GET"], name="teams", query=TEAMS_PARAMS)
