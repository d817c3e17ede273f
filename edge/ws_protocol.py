"""The WebSocket protocol of ``/ws`` (CONTRACT.md section 5), as pure functions:
client frames -> actions (or a ``ProtocolError``), server frames -> bytes, and
the raw WebSocket frame that carries them. No Sanic, no I/O.

Client -> server (JSON text frames)::

    {"action": "subscribe",   "matchId": 1}
    {"action": "subscribe",   "matchId": 1, "since": 41}
    {"action": "subscribe",   "matchId": 1, "mode": "latest"}   (latest-wins; default "exact")
    {"action": "subscribe",   "competitionId": 7}
    {"action": "unsubscribe", "matchId": 1}          (or "competitionId": 7)
    {"action": "ping"}

Server -> client: ``welcome``, ``subscribed``, ``unsubscribed``, the change
frames (``score:update``, ``commentary:new``, ``commentary:update``,
``match:status``, ``match:update``: exactly the bytes the relay published),
``snapshot`` (a latest-mode client that fell behind: the match as of ``seq``,
replacing the changes it had not been sent), ``pong`` and ``error``. Error
codes are ``ERROR_CODES``; close codes are the ``CLOSE_*`` constants
(4000-4499: reconnect, resuming with ``since``; 4500-4999: do not reconnect
unchanged -- the split centrifugal/centrifuge uses for its 3000-range codes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

import orjson

PROTOCOL_VERSION: Final = 1

#: Largest frame a client may send (Sanic's WEBSOCKET_MAX_SIZE): an action is
#: well under 200 bytes; anything bigger is closed with 1009 by the protocol.
MAX_CLIENT_FRAME: Final = 4096
#: Highest id accepted (Postgres bigint); larger is an invalid frame, not a lookup.
MAX_ID: Final = 2**63 - 1
#: A ``since`` further behind than this is not replayed: a fresh snapshot is cheaper.
RESUME_LIMIT: Final = 1000

# Close codes (RFC 6455 section 7.4; 4000-4999 are the application's).
CLOSE_NORMAL: Final = 1000
CLOSE_GOING_AWAY: Final = 1001  # the node is shutting down: reconnect to any node
CLOSE_TOO_BIG: Final = 1009  # a frame over MAX_CLIENT_FRAME (sent by the protocol layer)
CLOSE_INTERNAL: Final = 1011  # no pong in time, or a bug
CLOSE_SLOW: Final = 4008  # send queue full: reconnect and resume with since
CLOSE_FLOOD: Final = 4029  # far too many actions: reconnect after a pause
CLOSE_BAD_CLIENT: Final = 4500  # too many invalid frames: fix the client first

ErrorCode = Literal[
    "bad_json",
    "bad_frame",
    "binary_frame",
    "unknown_action",
    "unknown_match",
    "unknown_competition",
    "not_subscribed",
    "too_many_subscriptions",
    "rate_limited",
    "resume_unavailable",
    "slow_consumer",
    "unavailable",
    "internal",
]
ERROR_CODES: Final[tuple[str, ...]] = ErrorCode.__args__  # type: ignore[attr-defined]


class ProtocolError(Exception):
    """A client frame the protocol refuses; becomes an ``error`` frame."""

    def __init__(self, code: ErrorCode, message: str, **context: Any) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message
        self.context = context

    def frame(self) -> bytes:
        return error(self.code, self.message, **self.context)


# -- client actions ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subscribe:
    match_id: int
    since: int | None = None
    #: ``mode: latest``: a slow client gets one snapshot instead of a 4008 close
    latest: bool = False


@dataclass(frozen=True, slots=True)
class SubscribeCompetition:
    competition_id: int


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    match_id: int


@dataclass(frozen=True, slots=True)
class UnsubscribeCompetition:
    competition_id: int


@dataclass(frozen=True, slots=True)
class Ping:
    pass


#: Delivery modes of a match subscription: every change in order, or latest-wins.
MODES: Final = ("exact", "latest")

Action = Subscribe | SubscribeCompetition | Unsubscribe | UnsubscribeCompetition | Ping


def _id(body: dict[str, Any], name: str) -> int:
    value = body[name]
    if type(value) is not int or not 1 <= value <= MAX_ID:
        raise ProtocolError("bad_frame", f"{name} must be a positive integer", value=_echo(value))
    return value


def _echo(value: Any) -> Any:
    """A hostile value, cut down to something safe to send back."""
    if isinstance(value, str):
        return value[:64]
    if value is None or isinstance(value, bool | int | float):
        return value
    return type(value).__name__


def parse_action(text: str | bytes) -> Action:
    """One client frame -> an action; ``ProtocolError`` says what is wrong with it."""
    if isinstance(text, bytes | bytearray | memoryview):
        raise ProtocolError("binary_frame", "binary frames are not understood; send JSON text")
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ProtocolError("bad_json", 'frame is not JSON; send e.g. {"action": "ping"}') from None
    if not isinstance(body, dict):
        raise ProtocolError("bad_frame", 'frame must be a JSON object like {"action": "ping"}')
    action = body.get("action")
    if action == "ping":
        return Ping()
    if action not in ("subscribe", "unsubscribe"):
        if not isinstance(action, str):
            raise ProtocolError("bad_frame", 'frame needs "action": "subscribe", ...')
        raise ProtocolError(
            "unknown_action",
            "action must be subscribe, unsubscribe or ping",
            action=_echo(action),
        )
    has_match, has_comp = "matchId" in body, "competitionId" in body
    if has_match == has_comp:
        raise ProtocolError("bad_frame", f"{action} needs exactly one of matchId, competitionId")
    since = body.get("since")
    mode = body.get("mode")
    if mode is not None and (action != "subscribe" or mode not in MODES):
        raise ProtocolError(
            "bad_frame",
            'mode goes with subscribe and is "exact" (the default) or "latest"',
            value=_echo(mode),
        )
    if has_comp:
        if since is not None:
            raise ProtocolError("bad_frame", "since goes with matchId, not competitionId")
        if mode is not None:
            raise ProtocolError("bad_frame", "mode goes with matchId, not competitionId")
        competition_id = _id(body, "competitionId")
        if action == "subscribe":
            return SubscribeCompetition(competition_id)
        return UnsubscribeCompetition(competition_id)
    match_id = _id(body, "matchId")
    if action == "unsubscribe":
        return Unsubscribe(match_id)
    if since is not None and (type(since) is not int or not 0 <= since <= MAX_ID):
        raise ProtocolError("bad_frame", "since must be a seq: an integer >= 0", value=_echo(since))
    return Subscribe(match_id, since, mode == "latest")


# -- server frames (JSON payloads) ------------------------------------------------------


def welcome(node: str) -> bytes:
    return orjson.dumps({"type": "welcome", "node": node, "protocol": PROTOCOL_VERSION})


def subscribed(
    match_id: int,
    seq: int,
    snapshot: dict[str, Any] | None,
    *,
    competition_id: int | None = None,
    resumed: bool = False,
) -> bytes:
    """``snapshot`` is the match as of ``seq``; a resume (``resumed``) carries none:
    the changes after ``seq`` follow."""
    body: dict[str, Any] = {"type": "subscribed", "matchId": match_id, "seq": seq}
    if resumed:
        body["resumed"] = True
    else:
        body["snapshot"] = snapshot
    if competition_id is not None:
        body["competitionId"] = competition_id
    return orjson.dumps(body)


def snapshot(match_id: int, seq: int, data: dict[str, Any]) -> bytes:
    """A latest-mode client's catch-up: the match as of ``seq``; changes after it follow."""
    return orjson.dumps({"type": "snapshot", "matchId": match_id, "seq": seq, "data": data})


def subscribed_competition(competition_id: int, match_ids: list[int]) -> bytes:
    return orjson.dumps(
        {"type": "subscribed", "competitionId": competition_id, "matchIds": match_ids}
    )


def unsubscribed(*, match_id: int | None = None, competition_id: int | None = None) -> bytes:
    body: dict[str, Any] = {"type": "unsubscribed"}
    if match_id is not None:
        body["matchId"] = match_id
    if competition_id is not None:
        body["competitionId"] = competition_id
    return orjson.dumps(body)


PONG: Final = orjson.dumps({"type": "pong"})


def error(code: ErrorCode, message: str, **context: Any) -> bytes:
    return orjson.dumps({"type": "error", "code": code, "message": message, **context})


# -- the WebSocket frame ----------------------------------------------------------------


def text_frame(payload: bytes) -> bytes:
    """An unfragmented, unmasked text frame (RFC 6455 5.2) around UTF-8 ``payload``.

    Server frames are never masked and ``/ws`` never negotiates
    permessage-deflate (Sanic offers no extensions), so these bytes are the
    same for every client: fan-out builds them once per message per node.
    """
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return bytes((0x81, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + n.to_bytes(8, "big") + payload


# -- per-socket token bucket ------------------------------------------------------------


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; time is passed in."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False
