"""CORS: which other origins a browser lets read the API (``LIVESCORE_CORS_ORIGINS``).

``*`` (the default): every response says ``Access-Control-Allow-Origin: *``,
writes included. The API's one credential is a bearer key a page must put in
``Authorization`` itself (no cookies, so ``Access-Control-Allow-Credentials``
is never sent): a page on another origin can only write with a key it was
given, so ``*`` lets nothing through that a plain HTTP client could not do.

A comma list of origins: a request whose ``Origin`` is listed gets it echoed,
anything else gets no ``Access-Control-Allow-Origin`` (the browser then
withholds the response; non-browser clients are served as before); every
response says ``Vary: Origin`` so that a shared cache keeps them apart.

Every response exposes ``ETag``, ``Retry-After`` and ``Location``. A
preflight (``OPTIONS`` on any route's path) is a 204 naming the path's methods,
``Authorization, Content-Type, If-None-Match`` and a max age of 600 s; one
from an origin that is not listed is a 403 envelope ``origin_not_allowed``.
Preflights are not rate-limited (they cost a precomputed answer, no Redis
round trip, and carry no API key) and are counted in the metrics as OPTIONS.

The header dicts are built once per app; the hot read path only adds them.
"""

from __future__ import annotations

from collections.abc import Iterable

from sanic import HTTPResponse, Request

from edge.errors import ApiError, error_response

ANY = "*"
ALLOW_HEADERS = "Authorization, Content-Type, If-None-Match"
EXPOSE_HEADERS = "ETag, Retry-After, Location"
MAX_AGE = "600"


class OriginNotAllowed(ApiError):
    status, code = 403, "origin_not_allowed"


class Cors:
    """The CORS answer of one app, from ``LIVESCORE_CORS_ORIGINS`` (parsed)."""

    __slots__ = ("_any_headers", "any", "origins")

    def __init__(self, origins: Iterable[str]) -> None:
        listed = tuple(origins)
        self.any = not listed or ANY in listed
        self.origins = frozenset(listed) - {ANY}
        self._any_headers = {
            "Access-Control-Allow-Origin": ANY,
            "Access-Control-Expose-Headers": EXPOSE_HEADERS,
        }

    def allowed(self, origin: str | None) -> str | None:
        """The ``Access-Control-Allow-Origin`` value for a request from ``origin``."""
        if self.any:
            return ANY
        return origin if origin in self.origins else None

    def decorate(self, request: Request, response: HTTPResponse) -> None:
        """Add the CORS headers to an actual (non-preflight) response."""
        headers = response.headers
        if self.any:
            headers.update(self._any_headers)
            return
        headers["Vary"] = "Origin" if "Vary" not in headers else f"{headers['Vary']}, Origin"
        origin = request.headers.get("origin")
        if origin is not None and origin in self.origins:
            headers["Access-Control-Allow-Origin"] = origin
            headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS


class Preflight:
    """The ``OPTIONS`` answer of one path; ``add`` the methods as routes register."""

    __slots__ = ("_headers", "cors", "methods")

    def __init__(self, cors: Cors) -> None:
        self.cors = cors
        self.methods: list[str] = []
        self._headers: dict[str, str] = {}

    def add(self, methods: Iterable[str]) -> None:
        for method in methods:
            if method not in self.methods:
                self.methods.append(method)
        listed = ", ".join([*self.methods, "OPTIONS"])
        self._headers = {
            "Allow": listed,
            "Access-Control-Allow-Methods": listed,
            "Access-Control-Allow-Headers": ALLOW_HEADERS,
            "Access-Control-Max-Age": MAX_AGE,
            "Cache-Control": "no-store",
        }

    def respond(self, request: Request) -> HTTPResponse:
        """204 with the allow headers, or the 403 envelope for an origin not listed."""
        origin = request.headers.get("origin")
        allowed = self.cors.allowed(origin)
        if allowed is None and origin is not None:
            response = error_response(
                OriginNotAllowed(
                    f"the Origin {origin} may not call this API; "
                    "the server lists allowed origins in LIVESCORE_CORS_ORIGINS",
                    details={"origin": origin},
                )
            )
            response.headers["Vary"] = "Origin"
            return response
        headers = dict(self._headers)
        if allowed is not None:
            headers["Access-Control-Allow-Origin"] = allowed
        if not self.cors.any:
            headers["Vary"] = "Origin"
        return HTTPResponse(status=204, headers=headers)
