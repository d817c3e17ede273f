"""``GET /``: the live page (plain HTML + JS in ``edge/static/index.html``, no build
step). It lists today's matches from ``/api/matches`` and keeps them live over
``/ws``, resuming with ``since`` after a drop."""

from __future__ import annotations

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


def register(app: EdgeApp) -> None:
    # ?date=YYYY-MM-DD is read by the page's script (a bad one shows today)
    add_route(app, live_page, "/", ["GET"], name="live_page", query=("date",))
