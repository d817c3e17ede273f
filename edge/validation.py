"""Input validation: query strings, JSON bodies and pagination cursors.

Query problems are 400 (``invalid_parameter``), unparsable bodies 400
(``invalid_json``), bodies that parse but break the rules 422
(``validation_failed``) with every problem listed in
``details.errors[] = {"field", "message"}``. Unknown query parameters and
unknown body fields are refused, so a typo never silently does nothing.
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

from edge.errors import BadRequest, UnsupportedMedia, ValidationFailed
from livescore.limits import MAX_METADATA_BYTES, LimitExceeded, check_json_depth

#: Largest id PostgreSQL's bigint holds; anything above cannot exist.
MAX_ID = 2**63 - 1
#: Bound on numbers inside free-form JSON (metadata): 2**63, about 9.2e18.
NUMBER_LIMIT = 2**63
LIMIT_TEXT = "9.2e18"


def _numbers_fit(value: Any) -> bool:
    """True when every number in a JSON value round-trips through JSONB and orjson."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return True
    if isinstance(value, int | float):
        return abs(value) < NUMBER_LIMIT
    if isinstance(value, dict):
        return all(_numbers_fit(v) for v in value.values())
    if isinstance(value, list):
        return all(_numbers_fit(v) for v in value)
    return False


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


class Fields:
    """Collects every problem of one body, then raises them together (422)."""

    def __init__(self, body: dict[str, Any], known: Iterable[str]) -> None:
        self.body = body
        self.errors: list[dict[str, str]] = []
        for name in body:
            if name not in known:
                self.error(name, f"unknown field; allowed: {', '.join(sorted(known))}")

    def error(self, field: str, message: str) -> None:
        self.errors.append({"field": field, "message": message})

    def done(self) -> None:
        if self.errors:
            summary = "; ".join(f"{e['field']}: {e['message']}" for e in self.errors[:3])
            raise ValidationFailed(
                f"the body is invalid: {summary}", details={"errors": self.errors}
            )

    def has(self, name: str) -> bool:
        return self.body.get(name) is not None

    def string(
        self,
        name: str,
        *,
        required: bool = False,
        max_len: int = 200,
        pattern: re.Pattern[str] | None = None,
    ) -> str | None:
        value = self.body.get(name)
        if value is None:
            if required:
                self.error(name, "is required")
            return None
        if not isinstance(value, str) or not value.strip():
            self.error(name, "must be a non-empty string")
            return None
        if len(value) > max_len:
            self.error(name, f"must be at most {max_len} characters")
            return None
        if "\x00" in value:
            self.error(name, "must not contain NUL characters")
            return None
        if pattern is not None and not pattern.fullmatch(value):
            self.error(name, f"must match {pattern.pattern}")
            return None
        return value.strip()

    def integer(self, name: str, *, low: int, high: int, required: bool = False) -> int | None:
        value = self.body.get(name)
        if value is None:
            if required:
                self.error(name, "is required")
            return None
        if type(value) is not int or not low <= value <= high:
            self.error(name, f"must be a whole number from {low} to {high}")
            return None
        return value

    def name_or_id(self, name: str, *, required: bool = False) -> str | int | None:
        """A reference by canonical id (integer) or by name (string)."""
        value = self.body.get(name)
        if value is None:
            if required:
                self.error(name, "is required (a name or an id)")
            return None
        if type(value) is int:
            return self.integer(name, low=1, high=MAX_ID)
        if isinstance(value, str):
            return self.string(name)
        self.error(name, "must be a name (string) or an id (integer)")
        return None

    def timestamp(self, name: str, *, required: bool = False) -> datetime | None:
        value = self.body.get(name)
        if value is None:
            if required:
                self.error(name, "is required")
            return None
        if not isinstance(value, str) or len(value) > 64:
            self.error(name, "must be an ISO 8601 date-time string with a UTC offset")
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            self.error(name, f"{value!r} is not an ISO 8601 date-time")
            return None
        if parsed.tzinfo is None:
            self.error(name, "needs a UTC offset (e.g. 2026-11-26T20:00:00Z)")
            return None
        try:
            year = parsed.astimezone(UTC).year
        except OverflowError:  # year 1 or 9999 pushed past the calendar by its offset
            year = 0
        if not 1900 <= year <= 2200:
            self.error(name, "must be between the years 1900 and 2200")
            return None
        return parsed

    def choice(self, name: str, choices: Iterable[str], *, required: bool = False) -> str | None:
        value = self.body.get(name)
        choices = tuple(choices)
        if value is None:
            if required:
                self.error(name, "is required")
            return None
        if value not in choices:
            self.error(name, f"must be one of {', '.join(choices)}")
            return None
        assert isinstance(value, str)
        return value

    def object(self, name: str) -> dict[str, Any] | None:
        """Free-form JSON (metadata), bounded: ``MAX_JSON_DEPTH`` levels and
        ``MAX_METADATA_BYTES`` encoded, so every change holding it can be published."""
        value = self.body.get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.error(name, "must be a JSON object")
            return None
        try:
            check_json_depth(value, name)
        except LimitExceeded as exc:
            self.error(name, str(exc))
            return None
        encoded = orjson.dumps(value)
        if len(encoded) > MAX_METADATA_BYTES:
            self.error(
                name, f"is {len(encoded)} bytes as JSON; at most {MAX_METADATA_BYTES} are accepted"
            )
            return None
        if b"\\u0000" in encoded:
            self.error(name, "must not contain NUL characters (PostgreSQL cannot store them)")
            return None
        if not _numbers_fit(value):
            # JSONB keeps numbers exactly and hands 1e30 back as a 31-digit integer,
            # which no 64-bit JSON encoder (nor the WebSocket frame) can carry
            self.error(name, f"numbers must lie strictly between -{LIMIT_TEXT} and {LIMIT_TEXT}")
            return None
        return value
