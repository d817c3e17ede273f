"""One WebSocket client: its transport, bounded send queue, limits and subscriptions.

Frames are written straight to the socket's transport (``send``): no
coroutine, no per-client encoding. The send queue is the transport's write
buffer, counted in frames: after each write that leaves bytes buffered, the
end offset of the frame is remembered, and offsets the kernel has taken are
forgotten. A client that stops reading sees its queue grow; at half of
``queue_limit`` frames it is warned (an ``error`` frame ``slow_consumer``),
at ``queue_limit`` it is closed with 4008 (reconnect, resume with ``since``)
and dropped from every subscription. Nobody else waits for it.

Every frame a client sends costs a token (``ACTIONS_PER_SECOND``, burst
``ACTIONS_BURST``); without one it gets ``rate_limited`` and the action is
not done. Refusals drain a second bucket: a client that keeps flooding is
closed with 4029.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from websockets.protocol import State

from edge import ws_metrics as metrics
from edge import ws_protocol as wp
from edge.framework import WRITE_AFTER_CLOSE, heard_within, tcp_socket
from livescore.logs import kv

log = logging.getLogger("livescore.edge.ws")

ACTIONS_PER_SECOND = 20.0
ACTIONS_BURST = 60.0
#: Refused frames a client may send (refilled at 2 per second) before it is closed.
STRIKES_BURST = 100.0
#: Invalid frames (bad JSON, wrong types, unknown actions) tolerated in a row.
MAX_INVALID_IN_A_ROW = 50

OPEN = State.OPEN
#: The hub's keepalive ping (the same bytes for every client; RFC 6455 5.5.2).
PING_DATA = b"livescore"
PING_FRAME = bytes((0x89, len(PING_DATA))) + PING_DATA
#: The reason of a match subscribed to directly (the others are competition ids).
MATCH = "match"


class Transport(Protocol):
    def write(self, data: bytes) -> None: ...
    def get_write_buffer_size(self) -> int: ...
    def is_closing(self) -> bool: ...


class WsProtocol(Protocol):
    """The bits of ``websockets``' protocol object a session reads."""

    state: State


class Closer(Protocol):
    """How a session closes its socket (``ws_lean.Connection.close``: failing it, or
    a lingering close frame)."""

    def __call__(self, code: int = ..., reason: str = ...) -> Any: ...


class Pongs(Protocol):
    """Where the keepalive leaves the future of its ping, resolved when the pong
    carrying the same bytes comes (``ws_lean.Connection``)."""

    def __setitem__(self, data: bytes, pong: asyncio.Future[None]) -> None: ...


class Session:
    """A connected client. ``send`` is the hot path of fan-out: keep it lean
    (and ``Hub._deliver`` inlines its fast path)."""

    __slots__ = (
        "_close",
        "_written",
        "bucket",
        "closed",
        "competitions",
        "direct",
        "frame_ends",
        "ident",
        "invalid_in_a_row",
        "latest",
        "on_dead",
        "pings",
        "pong",
        "proto",
        "queue_limit",
        "reasons",
        "sock",
        "strikes",
        "transport",
        "warn_at",
        "warned",
    )

    def __init__(
        self,
        transport: Transport,
        proto: WsProtocol,
        close: Closer,
        *,
        queue_limit: int,
        ident: str = "",
        on_dead: Callable[[Session, bool], None] | None = None,
        pings: Pongs | None = None,
    ) -> None:
        self.transport = transport
        #: the TCP socket, asked by the keepalive whether the peer was heard lately
        self.sock = tcp_socket(transport)
        self.proto = proto
        self._close = close
        self.queue_limit = queue_limit
        self.warn_at = max(2, queue_limit // 2)
        self.ident = ident
        self.on_dead = on_dead
        self.closed = False
        self.warned = False
        #: bytes written since the transport's buffer was last seen empty, and the
        #: end offsets of the frames still (partly) in it; None while it is empty.
        #: ``Hub._deliver`` (``send`` inlined) resets ``frame_ends`` too.
        self._written = 0
        self.frame_ends: deque[int] | None = None
        now = time.monotonic()
        self.bucket = wp.TokenBucket(ACTIONS_PER_SECOND, ACTIONS_BURST, now)
        #: refusals left before a 4029; made at the first refusal (a bucket that was never
        #: drawn from is full whenever it is made, so nothing changes but the object)
        self.strikes: wp.TokenBucket | None = None
        self.invalid_in_a_row = 0
        #: matches this client asked latest-wins delivery of (None: none, the usual case)
        self.latest: set[int] | None = None
        #: match id -> why this client is in its feed: MATCH (subscribed directly)
        #: and/or the competition ids it came through. Keys: every feed it is in.
        self.reasons: dict[int, tuple[int | str, ...]] = {}
        #: how many of those hold MATCH (subscribed directly)
        self.direct = 0
        self.competitions: set[int] = set()
        #: where a ping's pong future goes (the connection) and the pong future of
        #: the hub's last ping
        self.pings = pings
        self.pong: asyncio.Future[None] | None = None

    # -- subscriptions -------------------------------------------------------------------

    def has(self, match_id: int, reason: int | str = MATCH) -> bool:
        return reason in self.reasons.get(match_id, ())

    def add_reason(self, match_id: int, reason: int | str) -> None:
        held = self.reasons.get(match_id, ())
        if reason not in held:
            self.reasons[match_id] = (*held, reason)
            if reason == MATCH:
                self.direct += 1

    def drop_reason(self, match_id: int, reason: int | str) -> bool:
        """Forget one reason; True when none is left (leave the feed)."""
        before = self.reasons.get(match_id, ())
        held = tuple(r for r in before if r != reason)
        if reason == MATCH and reason in before:
            self.direct -= 1
        if held:
            self.reasons[match_id] = held
            return False
        self.reasons.pop(match_id, None)
        return True

    def forget(self, match_id: int) -> None:
        """Forget every reason to be in a match's feed (the session leaves it)."""
        if MATCH in self.reasons.pop(match_id, ()):
            self.direct -= 1
        self.latest_done(match_id)

    def want_latest(self, match_id: int) -> None:
        """Deliver this match latest-wins (``mode: latest``)."""
        if self.latest is None:
            self.latest = set()
        self.latest.add(match_id)

    def latest_done(self, match_id: int) -> None:
        if self.latest is not None:
            self.latest.discard(match_id)
            if not self.latest:
                self.latest = None

    @property
    def subscriptions(self) -> int:
        """What counts against LIVESCORE_WS_MAX_SUBSCRIPTIONS: direct matches, competitions.
        Kept as a count (``direct``): the subscriptions gauge sums it over every session."""
        return self.direct + len(self.competitions)

    # -- sending -------------------------------------------------------------------------

    def send(self, frame: bytes) -> bool:
        """Write one ready-made WebSocket frame (``send_many``'s one-frame case);
        False if the client is gone or was just dropped for being slow."""
        buffered = self._put(frame)
        if buffered > 0:
            return self.queued_frame(len(frame), buffered)
        if buffered < 0:
            return False
        if self.frame_ends is not None:
            self.frame_ends = None
        return True

    def send_many(self, frames: list[bytes]) -> bool:
        """Write several frames in ONE transport write (a resume's ``subscribed``
        frame and its replay: one system call, not one per frame), booked in the
        send queue as if each frame had been written alone with ``send``: frame k
        counts as queued when the bytes up to its end were not all taken by the
        kernel. False if the client is gone or was just dropped for being slow."""
        if len(frames) == 1:
            return self.send(frames[0])
        transport = self.transport
        before = 0 if self.closed else transport.get_write_buffer_size()
        blob = b"".join(frames)
        buffered = self._put(blob)
        if buffered <= 0:
            if buffered < 0:
                return False
            if self.frame_ends is not None:
                self.frame_ends = None
            return True
        taken = before + len(blob) - buffered  # of the blob, by the kernel
        end = 0
        for frame in frames:
            end += len(frame)
            # what writing up to this frame alone would have left queued, plus what
            # the bookkeeping itself wrote since (a slow-consumer warning)
            left = before + max(0, end - taken) + transport.get_write_buffer_size() - buffered
            if left:
                if not self.queued_frame(len(frame), left):
                    return False
            elif self.frame_ends is not None:
                self.frame_ends = None
        return True

    def _put(self, data: bytes) -> int:
        """The one guarded write of ``send`` and ``send_many``: the bytes left in the
        transport's buffer after writing ``data``, or -1 (nothing written) if the
        client is gone: closed, its WebSocket no longer OPEN, or its socket closed
        before ``connection_lost`` reached us (``WRITE_AFTER_CLOSE``)."""
        if self.closed:
            return -1
        if self.proto.state is not OPEN:
            self._dead()
            return -1
        transport = self.transport
        try:
            transport.write(data)
        except WRITE_AFTER_CLOSE:
            self._dead()
            return -1
        return transport.get_write_buffer_size()

    def queued_frame(self, size: int, buffered: int) -> bool:
        """Book-keeping after a write that left ``buffered`` bytes in the transport."""
        ends = self.frame_ends
        if ends is None:
            ends = self.frame_ends = deque()
            self._written = buffered - size  # what was still queued before this frame
            if self._written > 0:
                ends.append(self._written)
        self._written += size
        ends.append(self._written)
        flushed = self._written - buffered
        while ends and ends[0] <= flushed:
            ends.popleft()
        queued = len(ends)
        if queued >= self.queue_limit:
            self.close(wp.CLOSE_SLOW, f"slow consumer: {queued} frames queued", slow=True)
            return False
        if queued >= self.warn_at and not self.warned:
            self.warned = True
            warning = wp.text_frame(
                wp.error(
                    "slow_consumer",
                    f"{queued} frames are waiting for you; at {self.queue_limit} you are "
                    "disconnected (4008): read faster or subscribe to less",
                    queued=queued,
                    limit=self.queue_limit,
                )
            )
            self.transport.write(warning)
            self._written += len(warning)
            ends.append(self._written)
        elif queued < self.warn_at // 2:
            self.warned = False
        return True

    def queued_now(self) -> int:
        """Frames still (partly) in the transport's buffer, as of now."""
        ends = self.frame_ends
        if ends is None:
            return 0
        buffered = self.transport.get_write_buffer_size()
        if not buffered:
            self.frame_ends = None
            return 0
        flushed = self._written - buffered
        while ends and ends[0] <= flushed:
            ends.popleft()
        return len(ends)

    def keepalive(self, loop: asyncio.AbstractEventLoop, interval: float) -> bool:
        """One keepalive round (every ``interval`` seconds): False if the last
        ping got no pong (the caller closes). A peer whose TCP was heard within
        the interval (it ACKed frames we sent, or sent something) is alive and
        is not pinged: only quiet connections pay for a ping and its pong."""
        if self.pong is not None:
            if not self.pong.done():
                return False
            self.pong = None
        if heard_within(self.sock, interval):
            return True
        if self.pings is not None:
            self.pong = pong = loop.create_future()
            self.pings[PING_DATA] = pong
        self.send(PING_FRAME)
        return True

    def send_payload(self, payload: bytes) -> bool:
        """Frame and send one JSON payload (control frames: welcome, errors, ...)."""
        return self.send(wp.text_frame(payload))

    # -- limits --------------------------------------------------------------------------

    def allow(self, now: float) -> bool:
        """Take a token for one received frame (False: refuse it)."""
        if self.bucket.take(now):
            return True
        strikes = self.strikes
        if strikes is None:
            strikes = self.strikes = wp.TokenBucket(2.0, STRIKES_BURST, now)
        if not strikes.take(now):
            self.close(wp.CLOSE_FLOOD, "too many actions; slow down and reconnect")
        return False

    def invalid(self) -> None:
        """Count one invalid frame; too many in a row closes the socket."""
        self.invalid_in_a_row += 1
        if self.invalid_in_a_row >= MAX_INVALID_IN_A_ROW:
            self.close(wp.CLOSE_BAD_CLIENT, "too many invalid frames in a row")

    def valid(self) -> None:
        self.invalid_in_a_row = 0

    # -- closing -------------------------------------------------------------------------

    def close(self, code: int, reason: str, *, slow: bool = False) -> None:
        """Send a close frame with ``code`` and drop the connection (idempotent)."""
        if self.closed:
            return
        log.info(kv("ws.close", client=self.ident, code=code, reason=reason))
        metrics.CLOSED.labels(str(code)).inc()
        self._dead(slow=slow)
        try:
            self._close(code, reason)
        except (OSError, RuntimeError) as exc:
            log.warning(kv("ws.close_failed", client=self.ident, code=code, error=repr(exc)))

    def left_open(self) -> None:
        """The WebSocket left the OPEN state (a close frame either way, a
        protocol error, a lost connection): send nothing more, be forgotten."""
        self._dead()

    def _dead(self, *, slow: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        if self.on_dead is not None:
            self.on_dead(self, slow)
