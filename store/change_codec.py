"""The one change codec: a change-log row <-> its published message bytes.

The relay publishes these bytes, the edge forwards them untouched as the
WebSocket frame, and ``GET /api/matches/{id}/changes`` serves the same
bytes: ``{"type", "matchId", "seq", "data", "ts"}`` (``ts``: commit time).

A change read back from the log carries its payload as the JSON text
PostgreSQL stored (``Change.payload_json``); that text goes into the message
as it is (``orjson.Fragment``), never decoded and re-encoded, so no stored
row can make publishing fail (issue 10: one over-deep ``metadata`` used to
stop the relay for every match). The write path encodes each new change once
before it commits (``check``), so nothing unencodable is ever stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from livescore.errors import InvalidChange
from livescore.limits import MAX_CHANGE_BYTES

if TYPE_CHECKING:
    from store.writes import Change


class UnpublishableChange(ValueError):
    """A stored change whose message cannot be built (the relay holds its match)."""


def encode(change: Change) -> bytes:
    """The published message (and WebSocket frame payload) of a change."""
    data: Any = (
        orjson.Fragment(change.payload_json) if change.payload_json is not None else change.payload
    )
    ts = change.created_at.isoformat() if change.created_at else None
    try:
        return orjson.dumps(
            {
                "type": change.type,
                "matchId": change.match_id,
                "seq": change.seq,
                "data": data,
                "ts": ts,
            }
        )
    except orjson.JSONEncodeError as exc:
        raise UnpublishableChange(
            f"change {change.match_id}/{change.seq} ({change.type}) cannot be encoded: {exc}"
        ) from exc


def check(change: Change) -> None:
    """Refuse (``InvalidChange``) a new change that could not be published."""
    try:
        size = len(encode(change))
    except UnpublishableChange as exc:
        raise InvalidChange(f"{exc}; simplify the data (nesting, numbers)") from None
    if size > MAX_CHANGE_BYTES:
        raise InvalidChange(
            f"a {change.type} change of {size} bytes is over the {MAX_CHANGE_BYTES}-byte limit "
            "on one change; send less data (e.g. smaller metadata)"
        )


def fragments(changes: list[Change]) -> list[orjson.Fragment]:
    """The changes' messages, each as published, to place inside a larger JSON body."""
    return [orjson.Fragment(encode(change)) for change in changes]
