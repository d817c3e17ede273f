"""JSON responses with validators: pre-encoded bytes, ETag, 304 on If-None-Match.

Cache-Control is ``no-cache`` on every read: a client or proxy may keep the
body but must revalidate each time, which costs a 304 without a body when
nothing changed. Live scores change every few seconds, so any ``max-age``
would serve a stale score to somebody; with ETags, revalidation is cheap.
"""

from __future__ import annotations

from typing import Any

import orjson
from sanic import HTTPResponse, Request

from edge.cache import etag_of
from edge.framework import EncodedResponse

JSON = "application/json"
READ_CACHE_CONTROL = "no-cache"


def not_modified(request: Request, etag: str) -> bool:
    """True when the request's If-None-Match names ``etag`` (weak comparison, RFC 9110)."""
    header = request.headers.get("if-none-match")
    if header is None:
        return False
    if header == etag or header == "*":
        return True
    for candidate in header.split(","):
        value = candidate.strip()
        if value.startswith("W/"):
            value = value[2:]
        if value == etag or value == "*":
            return True
    return False


def cached_json(request: Request, body: bytes, etag: str, status: int = 200) -> HTTPResponse:
    """Serve pre-encoded JSON with its ETag, or a bodiless 304 if the client has it."""
    headers = {"ETag": etag, "Cache-Control": READ_CACHE_CONTROL}
    if status == 200 and not_modified(request, etag):
        return EncodedResponse(status=304, headers=headers)
    return EncodedResponse(body, status=status, headers=headers, content_type=JSON)


def read_json(request: Request, data: Any) -> HTTPResponse:
    """Encode ``data`` and serve it with a content-hash ETag."""
    body = orjson.dumps(data)
    return cached_json(request, body, etag_of(body))


def created_json(data: Any, location: str) -> HTTPResponse:
    return HTTPResponse(
        orjson.dumps(data),
        status=201,
        headers={"Location": location, "Cache-Control": "no-store"},
        content_type=JSON,
    )
