"""Operational routes: /health, /metrics and /openapi.json."""

from __future__ import annotations

from functools import cache

import orjson
from sanic import HTTPResponse, Request

from edge import metrics_share
from edge.health import health_route
from edge.instrument import add_route
from edge.metrics import CONTENT_TYPE
from edge.openapi import document
from edge.responses import JSON
from edge.state import EdgeApp


@cache
def _openapi_bytes() -> bytes:
    return orjson.dumps(document())


async def metrics_route(request: Request) -> HTTPResponse:
    # the node's totals: every series summed over its live workers
    return HTTPResponse(
        metrics_share.render(request.app),
        headers={"Cache-Control": "no-store"},
        content_type=CONTENT_TYPE,
    )


async def openapi_route(request: Request) -> HTTPResponse:
    return HTTPResponse(_openapi_bytes(), content_type=JSON)


def register(app: EdgeApp) -> None:
    # probes and scrapers must always get through: no rate limit on /health and /metrics
    add_route(app, health_route, "/health", ["GET"], name="health", limited=False)
    add_route(app, metrics_route, "/metrics", ["GET"], name="metrics", limited=False)
    add_route(app, openapi_route, "/openapi.json", ["GET"], name="openapi")
