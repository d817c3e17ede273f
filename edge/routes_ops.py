"""Operational routes: /health, /metrics and /openapi.json."""

from __future__ import annotations

from functools import cache

import orjson
from sanic import HTTPResponse, Request

from edge.health import health_route
from edge.metrics import CONTENT_TYPE, REGISTRY
from edge.openapi import document
from edge.responses import JSON
from edge.state import EdgeApp


@cache
def _openapi_bytes() -> bytes:
    return orjson.dumps(document())


async def metrics_route(request: Request) -> HTTPResponse:
    return HTTPResponse(
        REGISTRY.render(), headers={"Cache-Control": "no-store"}, content_type=CONTENT_TYPE
    )


async def openapi_route(request: Request) -> HTTPResponse:
    return HTTPResponse(_openapi_bytes(), content_type=JSON)


def register(app: EdgeApp) -> None:
    app.add_route(health_route, "/health", methods=["GET"], name="health")
    app.add_route(metrics_route, "/metrics", methods=["GET"], name="metrics")
    app.add_route(openapi_route, "/openapi.json", methods=["GET"], name="openapi")
