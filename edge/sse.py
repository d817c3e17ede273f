"""Server-Sent Events through the WebSocket hub: one fan-out path for both.

An SSE client is a hub ``Session`` (``SseSession``) whose transport is an
``SseTransport``: the hub writes the same ready-made WebSocket frames it
writes to every socket, and the adapter rewrites each into one event of the
``text/event-stream`` body, as an HTTP/1.1 chunk on the real transport::

    id: 12:40
    event: score:update
    data: {"type":"score:update","matchId":12,"seq":40,...}

``data`` is exactly the JSON a WebSocket client gets. ``id`` is the stream's
position: ``matchId:seq`` of every match the stream follows (comma
separated, by match id), so the one ``Last-Event-ID`` a browser's
EventSource sends back on reconnecting resumes every match exactly where it
was. Frames without a match position (welcome, the competition's
``subscribed``, errors) carry no ``id``; EventSource keeps the last one.

The hub's send queue (counted in frames, ``LIVESCORE_WS_QUEUE``) works on the
adapter unchanged: it reports its buffer in the sizes of the frames it was
given, so a client that stops reading is warned and then dropped as on
``/ws``.

Everything here but ``SseTransport.write``'s I/O is plain data in, bytes
out, and is tested without a server (``tests/edge/test_sse_events.py``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import orjson
from websockets.protocol import State

from edge.ws_client import Closer, Session
from edge.ws_protocol import MAX_ID

#: What the stream asks EventSource to wait before reconnecting (ms).
RETRY_MS = 1000
#: The first bytes of every stream: the reconnect delay, and a comment that makes
#: proxies and browsers start delivering at once.
PREAMBLE = f"retry: {RETRY_MS}\n: livescore\n\n".encode()
HEARTBEAT = b": heartbeat\n\n"
_OP_TEXT, _OP_PING = 0x1, 0x9


class BadPosition(ValueError):
    """A ``Last-Event-ID`` or ``since`` that is not ``matchId:seq[,...]``."""


def parse_positions(text: str, *, limit: int) -> dict[int, int]:
    """``"12:40,13:7"`` -> ``{12: 40, 13: 7}`` (at most ``limit`` matches)."""
    positions: dict[int, int] = {}
    for part in text.split(","):
        match_id, sep, seq = part.strip().partition(":")
        if not sep or not match_id.isdigit() or not seq.isdigit():
            raise BadPosition(f"{part.strip()[:40]!r} is not matchId:seq")
        m, s = int(match_id), int(seq)
        if not (1 <= m <= MAX_ID and 0 <= s <= MAX_ID):
            raise BadPosition(f"{part.strip()[:40]!r} is out of range")
        if m in positions:
            raise BadPosition(f"match {m} is given twice")
        positions[m] = s
    if len(positions) > limit:
        raise BadPosition(f"{len(positions)} matches; at most {limit} per stream")
    return positions


def format_positions(positions: dict[int, int]) -> bytes:
    return ",".join(f"{m}:{positions[m]}" for m in sorted(positions)).encode()


def _extent(data: bytes, at: int = 0) -> tuple[int, int]:
    """(payload start, frame end) of the unmasked server frame at ``at`` of ``data``."""
    n = data[at + 1] & 0x7F
    start = at + 2
    if n == 126:
        n, start = int.from_bytes(data[at + 2 : at + 4], "big"), at + 4
    elif n == 127:
        n, start = int.from_bytes(data[at + 2 : at + 10], "big"), at + 10
    return start, start + n


def unframe(frame: bytes) -> tuple[int, bytes]:
    """(opcode, payload) of one unmasked server frame (``ws_protocol.text_frame``)."""
    start, end = _extent(frame)
    return frame[0] & 0x0F, frame[start:end]


def split_frames(data: bytes) -> list[bytes]:
    """The frames of one write: the hub writes a resume's frames in one
    (``Session.send_many``), everything else one frame per write."""
    frames: list[bytes] = []
    at = 0
    while at < len(data):
        end = _extent(data, at)[1]
        frames.append(data[at:end])
        at = end
    return frames


def chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk (the stream is chunked, as Sanic started it)."""
    return b"%x\r\n%b\r\n" % (len(data), data)


Head = tuple[bytes, int | None, int | None]


def head_of(payload: bytes) -> Head:
    """(type, matchId, seq) of a frame's JSON; matchId and seq only as a pair."""
    body = orjson.loads(payload)
    seq = body.get("seq") if "matchId" in body else None
    match_id = body.get("matchId") if seq is not None else None
    return str(body.get("type", "message")).encode(), match_id, seq


def event(payload: bytes, positions: dict[int, int], head: Head | None = None) -> bytes:
    """The SSE event of one frame's JSON payload; moves ``positions`` on."""
    kind, match_id, seq = head or head_of(payload)
    lines = b""
    if match_id is not None and seq is not None:
        positions[match_id] = seq
        lines = b"id: " + format_positions(positions) + b"\n"
    return lines + b"event: " + kind + b"\ndata: " + payload + b"\n\n"


#: The last frame written and what it holds: fan-out hands every stream the same
#: bytes object, so each frame is parsed once per worker, not once per stream.
_last: list[Any] = [None, None]


def _parsed(frame: bytes) -> tuple[int, bytes, Head | None]:
    if _last[0] is frame:
        parsed: tuple[int, bytes, Head | None] = _last[1]
        return parsed
    opcode, payload = unframe(frame)
    parsed = (opcode, payload, head_of(payload) if opcode == _OP_TEXT else None)
    _last[0], _last[1] = frame, parsed
    return parsed


class SseTransport:
    """The transport the hub writes WebSocket frames to; writes SSE chunks to
    the real one. Until ``start`` it only buffers (the HTTP head is not sent
    before the stream's subscriptions are known to be good)."""

    __slots__ = ("_frames", "_held", "_sse_total", "_ws_total", "positions", "transport")

    def __init__(self, transport: Any, positions: dict[int, int]) -> None:
        self.transport = transport
        self.positions = positions
        self._held: list[bytes] | None = []
        #: per write still (partly) in the real buffer: (its end in SSE bytes,
        #: its start in frame bytes)
        self._frames: deque[tuple[int, int]] = deque()
        self._sse_total = 0
        self._ws_total = 0

    def write(self, data: bytes) -> None:
        """Write one frame, or several back to back (a resume's, in one write)."""
        if _extent(data)[1] == len(data):
            self._write_frame(data)
            return
        for frame in split_frames(data):
            self._write_frame(frame)

    def _write_frame(self, frame: bytes) -> None:
        opcode, payload, head = _parsed(frame)
        if opcode == _OP_TEXT:
            data = chunk(event(payload, self.positions, head))
        elif opcode == _OP_PING:
            data = chunk(HEARTBEAT)
        else:
            return  # close frames: the stream's closer ends it instead
        if self._held is not None:
            self._held.append(data)
            return
        self.transport.write(data)
        self._frames.append((self._sse_total + len(data), self._ws_total))
        self._sse_total += len(data)
        self._ws_total += len(frame)

    def start(self) -> None:
        """Send what was held (after the HTTP head), then write through."""
        held, self._held = self._held or [], None
        if held:
            self.transport.write(b"".join(held))

    def get_write_buffer_size(self) -> int:
        """The buffer in frame bytes: the sizes of the frames still (partly) in it."""
        buffered = self.transport.get_write_buffer_size()
        frames = self._frames
        if not buffered:
            frames.clear()
            return 0
        flushed = self._sse_total - buffered
        while frames and frames[0][0] <= flushed:
            frames.popleft()
        return self._ws_total - frames[0][1] if frames else 0

    def is_closing(self) -> bool:
        return bool(self.transport.is_closing())

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.transport.get_extra_info(name, default)


class StreamState:
    """What ``Session`` reads of a WebSocket protocol object: its state."""

    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state = State.OPEN


class SseSession(Session):
    """A hub session for one event stream. No pings: the stream's own
    heartbeat keeps proxies from closing it, and a client that stops reading
    fills its queue like any other."""

    __slots__ = ("done", "stream")

    def __init__(
        self, transport: SseTransport, close: Closer, *, queue_limit: int, ident: str
    ) -> None:
        self.stream = StreamState()
        super().__init__(transport, self.stream, close, queue_limit=queue_limit, ident=ident)
        self.done = asyncio.Event()

    def keepalive(self, loop: asyncio.AbstractEventLoop, interval: float) -> bool:
        return not self.transport.is_closing()

    def _dead(self, *, slow: bool = False) -> None:
        super()._dead(slow=slow)
        self.done.set()  # the stream's handler returns: its socket is gone or dropped
