"""/api/competitions and /api/teams: reference data (small, read from PostgreSQL)."""

from __future__ import annotations

from sanic import HTTPResponse, Request

from edge.instrument import add_route
from edge.responses import read_json
from edge.state import EdgeApp, state
from edge.validation import id_param, query_params
from store.reference import list_competitions, list_teams

TEAMS_PARAMS = ("competition",)


async def competitions_route(request: Request) -> HTTPResponse:
    async with state(request).db() as conn:
        rows = await list_competitions(conn)
    return read_json(request, {"data": rows})


async def teams_route(request: Request) -> HTTPResponse:
    params = query_params(request, TEAMS_PARAMS)
    competition = id_param(params, "competition")
    async with state(request).db() as conn:
        rows = await list_teams(conn, competition)
    return read_json(request, {"data": rows})


def register(app: EdgeApp) -> None:
    add_route(app, competitions_route, "/api/competitions", ["GET"], name="competitions")
    add_route(app, teams_route, "/api/teams", ["GET"], name="teams", query=TEAMS_PARAMS)
