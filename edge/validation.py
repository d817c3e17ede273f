"""Input validation: query strings, JSON bodies and pagination cursors.

Query problems are 400 (``invalid_parameter``), unparsable bodies 400
(``invalid_json``); bodies that parse but break the rules are 422
(``validation_failed``, every problem in ``details.errors[] = {"field",
"message"}``), checked against the declarations in ``edge.requests``. Unknown
query parameters and unknown body fields are refused, so a typo never
silently does nothing.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

import orjson
from sanic import Request

from edge.errors import BadRequest, UnsupportedMedia

#: Largest id PostgreSQL's bigint holds; anything above cannot exist.
MAX_ID = 2**63 - 1
_INT = re.compile(r"[0-9]{1,19}")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def query_params(request: Request, allowed: Iterable[str]) -> dict[str, str]:
    """The query string as single values; unknown or repeated names are a 400."""
    allowed = set(allowed)
    values: dict[str, str] = {}
    for name, value in request.get_query_args(keep_blank_values=True):
        if name not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise BadRequest(
                f"unknown query parameter {name!r}; this route takes: {known}",
                code="invalid_parameter",
                details={"parameter": name},
            )
        if name in values:
            raise BadRequest(
                f"query parameter {name!r} is given twice; give it once",
                code="invalid_parameter",
                details={"parameter": name},
            )
        values[name] = value
    return values


def _bad(name: str, message: str) -> BadRequest:
    return BadRequest(f"{name}: {message}", code="invalid_parameter", details={"parameter": name})


def int_param(params: Mapping[str, str], name: str, *, low: int, high: int) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    if not _INT.fullmatch(raw) or not low <= int(raw) <= high:
        raise _bad(name, f"must be a whole number from {low} to {high}, got {raw!r}")
    return int(raw)


def int_param_or(params: Mapping[str, str], name: str, *, low: int, high: int, default: int) -> int:
    """``int_param`` for parameters with a default (limits, since)."""
    value = int_param(params, name, low=low, high=high)
    return default if value is None else value


def id_param(params: Mapping[str, str], name: str) -> int | None:
    return int_param(params, name, low=1, high=MAX_ID)


def day_param(params: Mapping[str, str], name: str) -> date | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        if not _DAY.fullmatch(raw):
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise _bad(name, f"must be a UTC day as YYYY-MM-DD, got {raw!r}") from None


def enum_list_param(
    params: Mapping[str, str], name: str, choices: Iterable[str]
) -> tuple[str, ...]:
    raw = params.get(name)
    if raw is None:
        return ()
    choices = tuple(choices)
    picked: list[str] = []
    for part in raw.split(","):
        value = part.strip()
        if value not in choices:
            raise _bad(name, f"{value!r} is not one of {', '.join(choices)}")
        if value not in picked:
            picked.append(value)
    return tuple(picked)


# -- cursors ----------------------------------------------------------------------------

_CURSOR_TAG = b"livescore-cursor-v1"


def encode_cursor(start_time: datetime, match_id: int) -> str:
    """An opaque cursor: base64url of a checksum and the (startTime, id) keyset."""
    payload = orjson.dumps([start_time.astimezone(UTC).isoformat(), match_id])
    check = hashlib.sha256(_CURSOR_TAG + payload).digest()[:6]
    return base64.urlsafe_b64encode(check + payload).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The keyset of a cursor from ``encode_cursor``; anything else is a 400."""
    bad = _bad("cursor", "is not a cursor this API issued; use nextCursor as given")
    if not cursor or len(cursor) > 200 or not re.fullmatch(r"[A-Za-z0-9_-]+", cursor):
        raise bad
    try:
        blob = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except ValueError:
        raise bad from None
    check, payload = blob[:6], blob[6:]
    if hashlib.sha256(_CURSOR_TAG + payload).digest()[:6] != check:
        raise bad
    try:
        when, match_id = orjson.loads(payload)
        start = datetime.fromisoformat(when)
    except (ValueError, TypeError):
        raise bad from None
    if type(match_id) is not int or not 1 <= match_id <= MAX_ID or start.tzinfo is None:
        raise bad
    return start, match_id


# -- JSON bodies ------------------------------------------------------------------------


def json_body(request: Request) -> dict[str, Any]:
    """The request body as a JSON object (415 if not JSON, 400 if unparsable)."""
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise UnsupportedMedia(
            "send the body as JSON with Content-Type: application/json",
            details={"contentType": content_type or None},
        )
    try:
        body = orjson.loads(request.body or b"")
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object", code="invalid_json")
    return body
