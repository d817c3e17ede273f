"""An upgraded ``/ws`` connection, held lean: one small protocol object, no task.

After the handshake (``ws_routes.ws_entry``) the socket's transport is handed
to a ``Connection`` (``framework.hand_over``): Sanic's HTTP protocol, request
and connection task let go of it and end, and what stays per idle client is
this object (``__slots__``), its ``Session`` (``edge/ws_client.py``) and the
transport. It parses the client's frames itself (``edge/ws_frames.py``:
masking, fragmentation, control frames, the size limit, UTF-8), answers
pings, resolves the hub's pong, and runs each client message through
``act``:

* rate limit first (a token per message, ``rate_limited`` at most once per
  ``RATE_ERROR_EVERY``; a client that keeps flooding is closed with 4029);
* then the action. What needs no waiting (ping, unsubscribe, errors, and a
  subscribe the hub serves from memory at once, ``Hub.subscribe_now``: a
  reconnect storm's joins) is done at once, inside ``data_received``. Any
  other subscribe may read PostgreSQL or wait its turn: it gets a task, and
  messages that arrive meanwhile wait in a backlog behind it (in order;
  reading pauses at ``BACKLOG_PAUSE`` of them, as a client's TCP window
  would); the task does them and ends. An idle socket holds no task.

Closing, as before the lean path: a slow consumer (4008), a dead peer (1011)
or a protocol error is *failed*: a close frame when still open, reading
stops, the transport closes (aborted after ``CLOSE_TIMEOUT`` if its buffer
never drains). A client closed for flooding or invalid frames (4029, 4500) is
probably still sending, so the close is *lingering*: only the close frame is
written, and what the client sends is read and dropped until its close frame
comes back (or ``LINGER_S`` passes), so it reads the code instead of a reset.
A close frame from the client is answered with the same frame, then the
transport closes. At shutdown Sanic asks each connection ``close_if_idle``
(a 1001 close frame, lingering) and then ``abort``s what is left.

The hub forgets the session when the transport closes or is lost (after an
action still running ends; a lost connection cancels it), and the admission
slot of the client's address is given back then.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Coroutine
from contextlib import suppress
from typing import Any, Final, Protocol

from websockets.protocol import State

from edge import ws_frames as wf
from edge import ws_metrics as metrics
from edge import ws_protocol as wp
from edge.framework import WRITE_AFTER_CLOSE
from edge.ws_client import ACTIONS_BURST, ACTIONS_PER_SECOND, Session
from edge.ws_hub import Hub
from livescore.logs import kv

log = logging.getLogger("livescore.edge.ws")

OPEN: Final = State.OPEN
CLOSING: Final = State.CLOSING
CLOSED: Final = State.CLOSED

#: At most one ``rate_limited`` error frame per this many seconds per client.
RATE_ERROR_EVERY = 1.0
#: Close codes for a client that is reading but misbehaving: it should get to
#: read why, so the node keeps reading (and dropping) what it still sends.
LINGERING_CLOSES: Final = frozenset({wp.CLOSE_FLOOD, wp.CLOSE_BAD_CLIENT, wp.CLOSE_GOING_AWAY})
#: How long a lingering close waits for the client's close frame.
LINGER_S = 5.0
#: How long a closed transport may take to flush before it is aborted.
CLOSE_TIMEOUT = 10.0
#: Messages waiting behind a running action at which reading pauses (and resumes
#: below half of it).
BACKLOG_PAUSE = 16


class Releases(Protocol):
    """What gives a connection's admission slot back (``ws_routes.Admission``)."""

    def release(self, address: str) -> None: ...


class Connection(asyncio.Protocol):
    """One upgraded WebSocket: the transport's protocol from the 101 on.

    It is also the session's ``proto`` (its ``state``: websockets' ``State``)
    and its pong table (``self[PING_DATA] = future``: resolved when the pong
    comes)."""

    __slots__ = (
        "address",
        "admission",
        "backlog",
        "buffer",
        "connections",
        "hub",
        "message",
        "paused",
        "pong",
        "pong_data",
        "rate_error_at",
        "session",
        "state",
        "task",
        "timer",
        "transport",
    )

    def __init__(
        self,
        transport: Any,
        hub: Hub,
        admission: Releases | None,
        address: str,
    ) -> None:
        self.transport = transport
        self.hub = hub
        self.admission = admission
        self.address = address
        #: Sanic's open connections (its shutdown closes them), joined in ``start``
        self.connections: set[Any] | None = None
        self.state = OPEN
        self.session: Session | None = None
        #: bytes of a frame not yet wholly received (None: nothing pending)
        self.buffer: bytes | None = None
        #: a fragmented message being put together
        self.message: wf.Message | None = None
        #: messages waiting behind the running action, and that action's task
        self.backlog: deque[str | bytes] | None = None
        self.task: asyncio.Task[None] | None = None
        self.paused = False
        self.pong: asyncio.Future[None] | None = None
        self.pong_data = b""
        self.rate_error_at = 0.0
        #: the linger or abort timer of a closing connection
        self.timer: asyncio.TimerHandle | None = None

    def start(self, session: Session, received: bytes, connections: set[Any] | None) -> None:
        """Go live (the session is attached): join Sanic's ``connections``, read
        ``received`` (bytes that came right behind the handshake)."""
        self.session = session
        if connections is not None:
            self.connections = connections
            connections.add(self)
        if received:
            self.data_received(received)

    # -- the pong table (Session.keepalive) -----------------------------------------------

    def __setitem__(self, data: bytes, pong: asyncio.Future[None]) -> None:
        self.pong_data = data
        self.pong = pong

    # -- asyncio.Protocol -----------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.buffer is not None:
            data = self.buffer + data
            self.buffer = None
        at = 0
        try:
            while self.state is not CLOSED:
                frame = wf.parse_frame(data, at, wp.MAX_CLIENT_FRAME)
                if frame is None:
                    if at < len(data):
                        self.buffer = data[at:]
                    return
                opcode, fin, payload, at = frame
                self._frame(opcode, fin, payload)
        except wf.FrameError as exc:
            log.info(kv("ws.protocol_error", client=self._ident(), code=exc.code, error=exc.reason))
            self.fail(exc.code, exc.reason)

    def eof_received(self) -> bool:
        return False  # the transport closes itself; connection_lost follows

    def pause_writing(self) -> None:
        return None  # the session counts what is queued (its send queue)

    def resume_writing(self) -> None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._leave_open(CLOSED)
        self.state = CLOSED
        self.buffer = self.message = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.connections is not None:
            self.connections.discard(self)
            self.connections = None
        if self.task is not None:
            self.task.cancel()  # its end forgets the session
        else:
            self._forget()

    # -- Sanic's shutdown ------------------------------------------------------------------

    def close_if_idle(self) -> bool:
        """Sanic stops: a 1001 close frame (lingering); True if already closing.
        Sanic calls this while its loop is not running (then runs it to let
        connections close): the close is done from the loop."""
        if self.state is not OPEN:
            return True
        asyncio.get_event_loop().call_soon(
            self.close, wp.CLOSE_GOING_AWAY, "the node is shutting down; reconnect"
        )
        return False

    def abort(self) -> None:
        self.transport.abort()

    # -- frames ---------------------------------------------------------------------------

    def _frame(self, opcode: int, fin: bool, payload: bytes) -> None:
        if opcode < wf.OP_CLOSE:
            self.message, kind, whole = wf.data_frame(
                self.message, opcode, fin, payload, wp.MAX_CLIENT_FRAME
            )
            if whole is not None and self.state is OPEN:
                self._received(wf.decode(kind, whole))
        elif opcode == wf.OP_PING:
            if self.state is OPEN and self.session is not None:
                self.session.send(wf.encode(wf.OP_PONG, payload))
        elif opcode == wf.OP_PONG:
            pong = self.pong
            if pong is not None and payload == self.pong_data:
                self.pong = None
                if not pong.done():
                    pong.set_result(None)
        else:
            wf.parse_close(payload)  # a malformed one fails the connection
            if self.state is OPEN:  # the client closes first: answer with its frame
                self._write(wf.encode(wf.OP_CLOSE, payload))
            self._close_transport()

    def _received(self, message: str | bytes) -> None:
        if self.backlog is not None:  # an action is running: keep the order
            self.backlog.append(message)
            if len(self.backlog) >= BACKLOG_PAUSE and not self.paused:
                self.paused = True
                self.transport.pause_reading()
            return
        work = self._act(message)
        if work is not None:
            self.backlog = deque()
            self.task = asyncio.get_running_loop().create_task(self._run(work))

    def _act(self, message: str | bytes) -> Coroutine[Any, Any, None] | None:
        session = self.session
        if session is None or session.closed:
            return None
        now = time.monotonic()
        if not session.allow(now):
            if not session.closed and now - self.rate_error_at >= RATE_ERROR_EVERY:
                self.rate_error_at = now
                tell(session, wp.ProtocolError("rate_limited", rate_message()))
            return None
        return act(self.hub, session, message)

    async def _run(self, work: Coroutine[Any, Any, None]) -> None:
        """The running action, then the messages that queued behind it, in order."""
        backlog = self.backlog
        try:
            await work
            while backlog:
                message = backlog.popleft()
                if self.paused and len(backlog) < BACKLOG_PAUSE // 2:
                    self.paused = False
                    if self.state is not CLOSED:  # a lingering close still reads
                        self.transport.resume_reading()
                more = self._act(message)
                if more is not None:
                    await more
        finally:
            self.backlog = None
            self.task = None
            if self.paused:
                self.paused = False
                if self.state is not CLOSED:
                    self.transport.resume_reading()
            if self.state is CLOSED:
                self._forget()

    # -- closing --------------------------------------------------------------------------

    def close(self, code: int = 1000, reason: str = "") -> None:
        """The session's closer (``Session.close``): lingering for 4029/4500/1001,
        failing for the rest."""
        if code not in LINGERING_CLOSES or self.state is not OPEN:
            self.fail(code, reason)
            return
        self._write(wf.close_frame(code, reason))
        self._leave_open(CLOSING)
        self.timer = asyncio.get_running_loop().call_later(LINGER_S, self._linger_over)

    #: the session's closer is the connection itself (no bound method kept per client)
    __call__ = close

    def _linger_over(self) -> None:
        self.timer = None
        self.fail(1006, "no close frame from the client")

    def fail(self, code: int, reason: str) -> None:
        """Close now: a close frame when still OPEN (not for 1006), stop reading,
        close the transport."""
        if self.state is CLOSED:
            return
        if self.state is OPEN and code != 1006:
            self._write(wf.close_frame(code, reason))
        self._close_transport()

    def _close_transport(self) -> None:
        self._leave_open(CLOSED)
        self.state = CLOSED
        self.buffer = self.message = None
        transport = self.transport
        if self.timer is not None:
            self.timer.cancel()
        transport.close()
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(CLOSE_TIMEOUT, transport.abort)
        if self.task is None:
            # not now: this may run inside the hub's fan-out loop over a subscriber set
            loop.call_soon(self._forget)

    def _leave_open(self, state: State) -> None:
        if self.state is OPEN:
            self.state = state
            if self.session is not None:
                self.session.left_open()

    def _forget(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            self.hub.detach(session)
        admission, self.admission = self.admission, None
        if admission is not None:
            admission.release(self.address)

    def _write(self, data: bytes) -> None:
        with suppress(WRITE_AFTER_CLOSE):  # closed under us; connection_lost is on its way
            self.transport.write(data)

    def _ident(self) -> str:
        return self.session.ident if self.session is not None else self.address


# -- the actions ---------------------------------------------------------------------------


def rate_message() -> str:
    return (
        f"more than {ACTIONS_PER_SECOND:g} actions per second (burst {ACTIONS_BURST:g}); "
        "this action was not done"
    )


def tell(session: Session, error: wp.ProtocolError) -> None:
    metrics.ERRORS.labels(error.code).inc()
    session.send_payload(error.frame())


def act(hub: Hub, session: Session, message: str | bytes) -> Coroutine[Any, Any, None] | None:
    """Do one client message. What needs no waiting is done here (None); a
    subscribe is returned as a coroutine to run (it may read PostgreSQL).
    Errors become ``error`` frames, never an exception out of here."""
    try:
        action = wp.parse_action(message)
    except wp.ProtocolError as exc:
        session.invalid()
        tell(session, exc)
        return None
    session.valid()
    match action:
        case wp.Subscribe(match_id, since, latest):
            try:
                if hub.subscribe_now(session, match_id, since, latest=latest):
                    return None  # served from memory at once: no task
            except Exception:  # a bug must cost one answer, not the connection or the node
                _failed(session, action)
                return None
            return _guarded(session, action, hub.subscribe(session, match_id, since, latest=latest))
        case wp.SubscribeCompetition(competition_id):
            return _guarded(session, action, hub.subscribe_competition(session, competition_id))
    try:
        match action:
            case wp.Ping():
                session.send_payload(wp.PONG)
            case wp.Unsubscribe(match_id):
                hub.unsubscribe(session, match_id)
                session.send_payload(wp.unsubscribed(match_id=match_id))
            case wp.UnsubscribeCompetition(competition_id):
                hub.unsubscribe_competition(session, competition_id)
                session.send_payload(wp.unsubscribed(competition_id=competition_id))
    except wp.ProtocolError as exc:
        tell(session, exc)
    except Exception:  # a bug must cost one answer, not the connection or the node
        _failed(session, action)
    return None


async def _guarded(session: Session, action: object, work: Coroutine[Any, Any, None]) -> None:
    try:
        await work
    except wp.ProtocolError as exc:
        tell(session, exc)
    except Exception:  # a bug must cost one answer, not the connection or the node
        _failed(session, action)


def _failed(session: Session, action: object) -> None:
    log.exception(kv("ws.action_failed", client=session.ident, action=type(action).__name__))
    tell(session, wp.ProtocolError("internal", "the server failed on this action"))
