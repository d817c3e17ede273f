"""The one error envelope of the REST API, and the exceptions that produce it.

Every error response, whatever raised it, is::

    {"error": {"code": "not_found", "message": "match 7 not found", "details": {}}}

    ApiError                     raised by edge code on purpose
    ├── BadRequest          400  malformed query, JSON or cursor
    ├── Unauthorized        401  no usable ``Authorization: Bearer`` header
    ├── Forbidden           403  an unknown or revoked API key
    ├── NotFoundError       404
    ├── ConflictError       409  an ambiguous team/competition name
    ├── Gone                410  the change log no longer holds what was asked
    ├── UnsupportedMedia    415  a body that is not application/json
    ├── ValidationFailed    422  a well-formed body the rules refuse
    ├── RateLimited         429  with Retry-After (REST, /ws upgrades and sockets)
    └── ServiceUnavailable  503  PostgreSQL (or another dependency) is down

``to_api_error`` maps everything else at the boundary: Sanic's own errors
(404 route, 405, 413, 431 for headers over 8 KiB, 426 for a plain GET on /ws,
...), store errors (NotFound, Conflict, InvalidChange), database outages
(503), and anything unexpected (500, logged with its traceback, answered
with a generic message).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
import psycopg
from sanic import HTTPResponse, Request
from sanic.exceptions import SanicException
from sanic.http import Http

from livescore.errors import Conflict, InvalidChange, NotFound, StoreError
from livescore.logs import kv

log = logging.getLogger("livescore.edge")

JSON = "application/json"


class ApiError(Exception):
    status: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        self.headers = headers or {}
        if code is not None:
            self.code = code


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFoundError(ApiError):
    status, code = 404, "not_found"


class ConflictError(ApiError):
    status, code = 409, "conflict"


class Gone(ApiError):
    status, code = 410, "gone"


class UnsupportedMedia(ApiError):
    status, code = 415, "unsupported_media_type"


class ValidationFailed(ApiError):
    status, code = 422, "validation_failed"


class RateLimited(ApiError):
    status, code = 429, "rate_limited"


class ServiceUnavailable(ApiError):
    status, code = 503, "service_unavailable"


class InternalError(ApiError):
    status, code = 500, "internal_error"


#: Codes for Sanic's own exceptions (raised before or around our handlers).
_SANIC_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "payload_too_large",
    416: "range_not_satisfiable",
    417: "expectation_failed",
    426: "upgrade_required",
    431: "request_header_fields_too_large",
    503: "service_unavailable",
}


#: Sanic's words for a request line plus headers over ``REQUEST_MAX_HEADER_SIZE``:
#: it raises the 413 of an oversized body, which would blame the wrong part.
_HEADER_TOO_LARGE = "Request header exceeds the size limit"


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _path_methods(request: Request | None) -> list[str]:
    """The methods the request's path answers, asked of the router one by one: Sanic's
    405 names none when a path with parameters has several routes (GET and PATCH on
    /api/matches/{id}), and a 405 must say what is allowed."""
    if request is None:
        return []
    allowed = []
    for method in _METHODS:
        try:
            request.app.router.get(request.path, method, None)
        except SanicException:  # NotFound or MethodNotAllowed: not this method
            continue
        allowed.append(method)
    return allowed


def _sanic_error(exc: SanicException, request: Request | None) -> ApiError:
    status = int(exc.status_code)
    if status == 413 and str(exc) == _HEADER_TOO_LARGE:
        status = 431
    code = _SANIC_CODES.get(status, "http_error")
    headers: dict[str, str] = {}
    if status == 404:
        path = request.path if request is not None else "this path"
        message = f"no route for {path}; see /openapi.json for the API's routes"
    elif status == 405:
        allowed = sorted(getattr(exc, "allowed_methods", None) or _path_methods(request))
        message = "method not allowed here" + (f"; use {', '.join(allowed)}" if allowed else "")
        if allowed:
            headers["Allow"] = ", ".join(allowed)
    elif status == 413:
        message = "request body too large; the limit is 64 KiB"
    elif status == 431:
        limit = Http.HEADER_MAX_SIZE or 8192  # set from REQUEST_MAX_HEADER_SIZE at start
        message = (
            f"request headers too large; the request line and headers may take "
            f"{int(limit) // 1024} KiB together"
        )
    elif status == 426:
        message = f"{request.path if request is not None else 'this path'} is a WebSocket: "
        message += "send an Upgrade: websocket handshake"
        headers["Upgrade"] = "websocket"
    else:
        message = str(exc) or "the request could not be handled"
    error = ApiError(message, headers=headers, code=code)
    error.status = status
    return error


def to_api_error(exc: BaseException, request: Request | None) -> ApiError:
    """Map any exception to the API error it is answered with."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, SanicException):
        return _sanic_error(exc, request)
    if isinstance(exc, NotFound):
        return NotFoundError(str(exc), details={"kind": exc.kind})
    if isinstance(exc, Conflict):
        return ConflictError(str(exc))
    if isinstance(exc, InvalidChange):
        return ValidationFailed(str(exc), code="invalid_change")
    if isinstance(exc, psycopg.OperationalError | StoreError):
        log.warning(kv("edge.database_unavailable", error=type(exc).__name__, detail=exc))
        return ServiceUnavailable(
            "the database is unavailable; retry shortly",
            code="database_unavailable",
            headers={"Retry-After": "2"},
        )
    path = request.path if request is not None else "?"
    log.error(kv("edge.unhandled", path=path, error=type(exc).__name__), exc_info=exc)
    return InternalError("internal server error; the incident is logged")


def envelope(error: ApiError) -> bytes:
    return orjson.dumps(
        {"error": {"code": error.code, "message": error.message, "details": error.details}}
    )


def error_response(error: ApiError) -> HTTPResponse:
    headers = {"Cache-Control": "no-store", **error.headers}
    if error.status == 401 and "WWW-Authenticate" not in headers:
        headers["WWW-Authenticate"] = 'Bearer realm="livescore"'
    return HTTPResponse(envelope(error), status=error.status, headers=headers, content_type=JSON)


async def handle_exception(request: Request, exc: Exception) -> HTTPResponse:
    """Sanic's catch-all exception handler: everything leaves in the envelope."""
    return error_response(to_api_error(exc, request))
