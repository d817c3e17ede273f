"""``GET /``: the live page (plain HTML + JS in ``edge/static/index.html``, no build
step). It lists today's matches from ``/api/matches`` and keeps them live over
``/ws``, resuming with ``since`` after a drop."""

from __future__ import annotations

import struct
import zlib
from functools import cache
from importlib import resources

from sanic import HTTPResponse, Request

from edge.cache import etag_of
from edge.instrument import add_route
from edge.responses import not_modified
from edge.state import EdgeApp

#: The page is small and changes only with a deploy: revalidate, 304 when unchanged.
CACHE_CONTROL = "no-cache"


@cache
def page() -> bytes:
    return resources.files("edge").joinpath("static/index.html").read_bytes()


async def live_page(request: Request) -> HTTPResponse:
    body = page()
    etag = etag_of(body)
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if not_modified(request, etag):
        return HTTPResponse(status=304, headers=headers)
    return HTTPResponse(body, headers=headers, content_type="text/html; charset=utf-8")


@cache
def icon() -> bytes:
    """A 16x16 green square as an ICO holding one PNG (every current browser reads it)."""
    size = 16

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    rows = b"".join(b"\x00" + b"\x1a\x7f\x37" * size for _ in range(size))
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )
    header = struct.pack("<HHH", 0, 1, 1)
    entry = struct.pack("<BBBBHHII", size, size, 0, 0, 1, 32, len(png), 6 + 16)
    return header + entry + png


async def favicon(request: Request) -> HTTPResponse:
    """A tiny icon: browsers ask for one with every page, and a 404 only fills logs."""
    return HTTPResponse(
        icon(),
        headers={"Cache-Control": "public, max-age=86400"},
        content_type="image/x-icon",
    )


def register(app: EdgeApp) -> None:
    # ?date=YYYY-MM-DD is read by the page's script (a bad one shows today)
    add_route(app, live_page, "/", ["GET"], name="live_page", query=("date",))
    add_route(app, favicon, "/favicon.ico", ["GET"], name="favicon", limited=False)
