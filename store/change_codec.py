"""The one change codec: a change (``store.writes.Change``) <-> its published
message bytes. ``encode`` is used by the relay, the hub's log fills and REST
``/changes``; ``decode`` by the edge's change bus; the tests use both.

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

from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from livescore.errors import InvalidChange
from livescore.limits import MAX_CHANGE_BYTES

if TYPE_CHECKING:
    from store.writes import Change


class UnpublishableChange(ValueError):
    """A stored change whose message cannot be built (the relay holds its match)."""


class MalformedChange(ValueError):
    """Bytes on the changes channel that are not a change message (logged, skipped)."""


def encode(change: Change) -> bytes:
    """The published message (and WebSocket frame payload) of a change; for a
    change decoded from the bus, the very bytes it came as."""
    if change.message is not None:
        return change.message
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


def decode(raw: bytes) -> Change:
    """A published message back to its change; ``message`` keeps ``raw`` as it is."""
    from store.writes import Change  # store.writes imports this module

    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedChange(f"not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise MalformedChange("not a JSON object")
    match_id, seq, kind = body.get("matchId"), body.get("seq"), body.get("type")
    if type(match_id) is not int or type(seq) is not int or not isinstance(kind, str):
        raise MalformedChange("needs integer matchId and seq and a string type")
    data, ts = body.get("data"), body.get("ts")
    created_at = None
    if isinstance(ts, str):
        try:
            created_at = datetime.fromisoformat(ts)
        except ValueError:
            created_at = None
    return Change(
        match_id=match_id,
        seq=seq,
        type=kind,
        payload=data if isinstance(data, dict) else {},
        source=None,
        created_at=created_at,
        message=raw,
    )


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
