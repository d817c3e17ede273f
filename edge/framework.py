"""Every reliance of ``/ws`` on sanic, websockets and uvloop internals, and on the
kernel's ``struct tcp_info`` layout: the only module that touches them.

The WebSocket fast path (``edge/ws_routes.py``, ``ws_client.py``, ``ws_hub.py``)
leans on things none of these libraries promise. Each is reached through a
small named function here, and ``ASSUMPTIONS`` lists them, each with a cheap
probe against the installed versions:

* ``register_ws`` calls ``require()``: an app whose sanic/websockets break one
  refuses to start, with one line per broken assumption;
* ``tests/ws/test_framework_assumptions.py`` runs every probe and checks the
  behaviour behind it on real objects and real loopback sockets, each
  failure naming the package, the version checked and the version installed.

README "Upgrading sanic/websockets" says what to do when one fails.
``VERIFIED`` holds the versions this was last checked against (the pins in
``pyproject.toml``; a test keeps them equal).

What is relied on (the probe names):

sanic
  ``upgrade``          ``Sanic._websocket_handler(handler, request)``: the handshake,
                       then the handler as a task Sanic cancels on shutdown
                       (``ws_entry`` calls it after its admission checks).
  ``is_websocket``     a route handler marked ``is_websocket`` may return None
                       (``Sanic.handle_request`` skips its response checks).
  ``websocket``        ``Websocket(ws_proto)``: ``.ws_proto`` (the websockets
                       protocol), ``.io_proto.transport`` (the TCP transport the
                       hub writes frames to), ``.pings`` (ping payload -> future,
                       resolved by ``process_pong``: the hub's keepalive puts its
                       own future there), ``.fail_connection(code, reason)``.
  ``assembler``        ``.assembler``: received frames go to its ``put``, which
                       waits on ``message_fetched`` until a ``recv`` takes them
                       (``stop_reading`` swaps it and releases the wait).
websockets
  ``state_setter``     ``Protocol.state`` is a property whose setter every state
                       change goes through, storing ``_state``; ``ServerProtocol``
                       has no ``__slots__`` (``watch_state`` swaps its class).
  ``close_frame``      ``send_close`` + ``data_to_send`` give the close frame's
                       bytes (a lingering close writes them itself).
uvloop (checked by the test only: it needs a running loop)
  ``TCPTransport.write`` on a transport whose socket closed raises
  ``RuntimeError`` (``WRITE_AFTER_CLOSE``), before ``connection_lost`` runs.
Linux
  ``TCP_INFO``: ``tcpi_last_data_recv``/``tcpi_last_ack_recv`` at bytes 52/56
  (checked by the test on a real socket; without it every quiet-or-not
  client is simply pinged).

Used inline, for speed, rather than through a function (keep them in step):
``Hub._deliver`` and ``Session.send`` write to the transport directly and
catch ``WRITE_AFTER_CLOSE`` (a name looked up only when the write raises: no
cost per client per frame); ``Session.send`` reads ``proto.state`` (public
websockets API). The transport, the protocol and Sanic's ping table are
looked up here once per session (``transport_of``, ``protocol_of``,
``pings_of``) and bound to it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import platform
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from sanic import Request, Sanic, Websocket
from websockets.frames import Frame
from websockets.protocol import OPEN, Protocol, State
from websockets.server import ServerProtocol

from livescore.errors import LiveScoreError
from livescore.logs import kv

log = logging.getLogger("livescore.edge.ws")

#: The versions every assumption below was last checked against (= the pins).
VERIFIED = {"sanic": "25.12.1", "websockets": "17.4", "uvloop": "0.23.0"}
#: Where to read what to do when one fails.
SEE = "see README 'Upgrading sanic/websockets'"


class FrameworkChanged(LiveScoreError):
    """The installed sanic/websockets no longer do what ``/ws`` relies on."""


def installed(package: str) -> str:
    if package == "linux":
        return platform.release()
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def changed(package: str, what: str) -> str:
    """``"sanic 25.12.1 -> 26.3.0: <what>; see README ..."``: what changed, where."""
    now = installed(package)
    checked = VERIFIED.get(package)
    if checked is None:
        versions = f"{package} {now}"
    elif now == checked:
        versions = f"{package} {checked} (the version checked)"
    else:
        versions = f"{package} {checked} -> {now}"
    return f"{versions}: {what}; {SEE}"


# -- sanic ---------------------------------------------------------------------------------

_UPGRADE = "_websocket_handler"
_MARK = "is_websocket"


def upgrade(request: Request, handler: Callable[..., Awaitable[None]]) -> Awaitable[None]:
    """Sanic's own WebSocket route body: the handshake, then ``handler(request, ws)``
    as a task it cancels on shutdown. ``ws_entry`` awaits it after admission so
    that one ``try/finally`` spans the whole connection, upgrade included."""
    run: Callable[..., Awaitable[None]] = getattr(request.app, _UPGRADE)
    return run(handler, request)


def upgrades_itself(route: Callable[..., Any]) -> None:
    """Mark a plain GET route that performs the upgrade itself (``upgrade``): Sanic
    skips its response checks for it, so it may return None after upgrading and
    an ordinary ``HTTPResponse`` when it refuses."""
    setattr(route, _MARK, True)


def transport_of(ws: Websocket) -> Any:
    """The connection's transport (uvloop's ``TCPTransport``), None once it is gone."""
    return ws.io_proto.transport if ws.io_proto else None


def protocol_of(ws: Websocket) -> ServerProtocol:
    """The ``websockets`` sans-I/O protocol object under Sanic's WebSocket."""
    proto: ServerProtocol = ws.ws_proto
    return proto


def pings_of(ws: Websocket) -> dict[bytes, asyncio.Future[None]]:
    """Sanic's table of pings awaiting a pong: ping payload -> future, resolved
    (and removed) by ``process_pong`` when the pong arrives."""
    pings: dict[bytes, asyncio.Future[None]] = ws.pings
    return pings


def expect_pong(
    pings: dict[bytes, asyncio.Future[None]], data: bytes, loop: asyncio.AbstractEventLoop
) -> asyncio.Future[None]:
    """A future Sanic resolves when the pong to a ping carrying ``data`` arrives
    (the hub writes the ping frame itself)."""
    pong: asyncio.Future[None] = loop.create_future()
    pings[data] = pong
    return pong


def fail(ws: Websocket, code: int, reason: str) -> Any:
    """Close now: a close frame (when still OPEN), stop reading, drop the connection."""
    return ws.fail_connection(code, reason)


def send_close_only(ws: Websocket, code: int, reason: str) -> None:
    """Write a close frame and go on reading (a lingering close): the client
    still sending gets to read the code before the connection ends."""
    proto = protocol_of(ws)
    proto.send_close(code, reason)
    transport = transport_of(ws)
    if transport is not None:
        for data in proto.data_to_send():
            transport.write(data)


class _DropFrames:
    """Stands in for Sanic's frame assembler once the handler no longer reads:
    every frame is dropped at once."""

    async def put(self, frame: Frame) -> None:
        return None

    async def get(self, *_: object) -> None:
        return None


def stop_reading(ws: Websocket) -> None:
    """Release the frames that arrived after the handler stopped reading.

    Sanic hands each received frame to its assembler from a task it keeps no
    reference to (``data_received`` -> ``async_data_received``), and the
    assembler's ``put`` waits until a ``recv`` takes the message. A client
    that sent frames while its handler was busy (a subscribe reading the
    database) and then left leaves those tasks waiting forever: when the
    connection's objects are collected, each one is logged as "Task was
    destroyed but it is pending!" (1,000 clients leaving at once: a flood).
    So, when the handler ends: later frames are dropped by a stand-in, and
    the ``put`` already waiting is told its message was taken."""
    assembler = getattr(ws, "assembler", None)
    fetched = getattr(assembler, "message_fetched", None)
    if not isinstance(fetched, asyncio.Event):
        _warn_once(
            "ws.assembler_unknown",
            assembler=type(assembler).__qualname__,
            effect="frames sent just before a client leaves may log 'Task was destroyed'",
        )
        return
    setattr(ws, "assembler", _DropFrames())  # noqa: B010 (Sanic types it as its own class)
    fetched.set()


# -- websockets ----------------------------------------------------------------------------


class _WatchedProtocol(ServerProtocol):
    """websockets' server protocol, telling someone when it leaves OPEN.

    Every state change of ``websockets.protocol.Protocol`` goes through its
    ``state`` setter (a close frame sent or received, a protocol error,
    Sanic's ``connection_lost``), so this one override sees them all. The
    getter reads ``_state`` directly, as websockets' own does (no extra call)."""

    on_leave_open: Callable[[], None] | None = None

    @property
    def state(self) -> State:
        return self._state

    @state.setter
    def state(self, state: State) -> None:
        Protocol.state.fset(self, state)  # type: ignore[attr-defined]
        if state is not OPEN and self.on_leave_open is not None:
            callback, self.on_leave_open = self.on_leave_open, None
            callback()


def watch_state(proto: Any, on_leave_open: Callable[[], None]) -> None:
    """Call ``on_leave_open`` once, as soon as ``proto`` (``protocol_of(ws)``, a
    ``websockets`` ``ServerProtocol``) is no longer OPEN.

    The fan-out loop then needs only the session's own ``closed`` flag, not a
    look at each client's protocol object per frame (a property call and a
    cache miss per client: a quarter of the loop's cost at 10k clients)."""
    if type(proto) is ServerProtocol:
        watched: Any = proto
        watched.__class__ = _WatchedProtocol  # same layout: adds behaviour, no state
        watched.on_leave_open = on_leave_open
    else:
        _warn_once(
            "ws.state_unwatched",
            protocol=type(proto).__qualname__,
            effect="a closed socket is skipped only once its handler ends",
        )
    if proto.state is not OPEN:
        on_leave_open()


# -- uvloop --------------------------------------------------------------------------------

#: What uvloop's ``TCPTransport.write`` raises once its socket closed, before
#: ``connection_lost`` reached the protocol. Caught inline by ``Hub._deliver``
#: and ``Session.send`` (``except WRITE_AFTER_CLOSE``: looked up only on a raise).
WRITE_AFTER_CLOSE = RuntimeError


# -- the kernel: TCP_INFO ------------------------------------------------------------------

#: ``struct tcp_info`` (linux/tcp.h): ``tcpi_last_data_recv`` and
#: ``tcpi_last_ack_recv``, milliseconds since the peer last sent data / an ACK.
TCP_INFO = getattr(socket, "TCP_INFO", None)
TCP_INFO_LAST_RECV = struct.Struct("=II")
TCP_INFO_LAST_RECV_AT = 52
#: Bytes asked of the kernel (it returns at most its own struct's size).
TCP_INFO_ASK = 104


def tcp_socket(transport: object) -> Any:
    """The TCP socket under a transport, if it has one we can ask (else None)."""
    get_extra_info = getattr(transport, "get_extra_info", None)
    sock = get_extra_info("socket") if get_extra_info is not None else None
    if TCP_INFO is None or sock is None:
        return None
    if getattr(sock, "family", None) not in (socket.AF_INET, socket.AF_INET6):
        return None
    return sock


def heard_within(sock: Any, seconds: float) -> bool:
    """Has the peer's TCP sent anything (data, or an ACK of what we sent) in the
    last ``seconds``? Read from the kernel (``TCP_INFO``): proof the peer is
    there without a ping. False when the kernel cannot tell."""
    if sock is None:
        return False
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, TCP_INFO, TCP_INFO_ASK)
    except OSError:
        return False
    if len(info) < TCP_INFO_LAST_RECV_AT + TCP_INFO_LAST_RECV.size:
        return False
    data_ms, ack_ms = TCP_INFO_LAST_RECV.unpack_from(info, TCP_INFO_LAST_RECV_AT)
    return bool(min(data_ms, ack_ms) < seconds * 1000)


# -- the assumptions and their probes ------------------------------------------------------

_warned: set[str] = set()


def _warn_once(event: str, **fields: str) -> None:
    if event in _warned:
        return
    _warned.add(event)
    log.warning(kv(event, **fields, fix=f"pin sanic/websockets to VERIFIED; {SEE}"))


def _fresh_websocket() -> Websocket:
    return Websocket(ServerProtocol(state=OPEN))


def _probe_upgrade() -> str | None:
    run = getattr(Sanic, _UPGRADE, None)
    if run is None:
        return f"Sanic no longer has {_UPGRADE} (the upgrade ws_entry runs after admission)"
    if not inspect.iscoroutinefunction(run):
        return f"Sanic.{_UPGRADE} is no longer a coroutine function"
    params = list(inspect.signature(run).parameters)
    if params[:3] != ["self", "handler", "request"]:
        return f"Sanic.{_UPGRADE} takes ({', '.join(params)}), not (self, handler, request, ...)"
    return None


def _probe_is_websocket() -> str | None:
    try:
        source = inspect.getsource(Sanic.handle_request)
    except (OSError, TypeError) as exc:
        return f"Sanic.handle_request's source cannot be read ({exc!r})"
    if _MARK not in source:
        return (
            f"Sanic.handle_request no longer looks at a handler's {_MARK} "
            "(ws_entry returns None after upgrading by itself)"
        )
    return None


def _probe_websocket() -> str | None:
    try:
        proto = ServerProtocol(state=OPEN)
        ws = Websocket(proto)
    except Exception as exc:
        return f"Websocket(ws_proto) can no longer be made this way ({exc!r})"
    missing = []
    if getattr(ws, "ws_proto", None) is not proto:
        missing.append("ws_proto (the websockets protocol it was made with)")
    if not hasattr(ws, "io_proto"):
        missing.append("io_proto (whose .transport the hub writes to)")
    if not isinstance(getattr(ws, "pings", None), dict):
        missing.append("pings (a dict of ping payload -> pong future)")
    fail_connection = getattr(ws, "fail_connection", None)
    if not callable(fail_connection):
        missing.append("fail_connection(code, reason)")
    elif list(inspect.signature(fail_connection).parameters)[:2] != ["code", "reason"]:
        missing.append("fail_connection(code, reason) with those parameters")
    if missing:
        return f"Sanic's Websocket ({Websocket.__qualname__}) no longer has " + ", ".join(missing)
    return None


def _probe_assembler() -> str | None:
    ws = _fresh_websocket()
    assembler = getattr(ws, "assembler", None)
    if assembler is None:
        return "Sanic's Websocket no longer has an assembler (frames waiting for recv)"
    if not isinstance(getattr(assembler, "message_fetched", None), asyncio.Event):
        return (
            f"Sanic's frame assembler ({type(assembler).__qualname__}) no longer has a "
            "message_fetched asyncio.Event (stop_reading releases a waiting put with it)"
        )
    coroutines = sorted(
        name
        for name, value in vars(type(assembler)).items()
        if inspect.iscoroutinefunction(value) and not name.startswith("_")
    )
    if coroutines != ["get", "put"]:
        return (
            f"Sanic's frame assembler's coroutines are now {coroutines}, not get and put "
            "(all that stop_reading's stand-in, _DropFrames, answers)"
        )
    return None


def _probe_state_setter() -> str | None:
    prop = Protocol.__dict__.get("state")
    if not isinstance(prop, property) or prop.fset is None:
        return "websockets' Protocol.state is no longer a property with a setter"
    proto = ServerProtocol(state=OPEN)
    if getattr(proto, "_state", None) is not OPEN:
        return "websockets' Protocol no longer stores its state in _state"
    if not hasattr(proto, "__dict__"):
        return "websockets' ServerProtocol now has __slots__ (watch_state swaps its class)"
    left: list[State] = []
    watch_state(proto, lambda: left.append(proto.state))
    proto.send_close(1000, "")
    if left != [State.CLOSING]:
        return (
            "a close frame sent by websockets' ServerProtocol no longer goes through the "
            f"state setter (watch_state saw {left})"
        )
    return None


def _probe_close_frame() -> str | None:
    proto = ServerProtocol(state=OPEN)
    proto.send_close(4029, "x")
    data = b"".join(proto.data_to_send())
    if data[:1] != b"\x88" or data[2:4] != (4029).to_bytes(2, "big"):
        return f"send_close + data_to_send no longer give the close frame (got {data[:8]!r})"
    return None


@dataclass(frozen=True)
class Assumption:
    name: str
    package: str
    probe: Callable[[], str | None]


ASSUMPTIONS = (
    Assumption("upgrade", "sanic", _probe_upgrade),
    Assumption("is_websocket", "sanic", _probe_is_websocket),
    Assumption("websocket", "sanic", _probe_websocket),
    Assumption("assembler", "sanic", _probe_assembler),
    Assumption("state_setter", "websockets", _probe_state_setter),
    Assumption("close_frame", "websockets", _probe_close_frame),
)


def problem(assumption: Assumption) -> str | None:
    """What changed (with the versions), or None when the assumption holds."""
    try:
        what = assumption.probe()
    except Exception as exc:  # a probe tripping over the change is a change too
        what = f"probing {assumption.name} raised {exc!r}"
    return None if what is None else changed(assumption.package, what)


def require() -> None:
    """Raise ``FrameworkChanged`` naming each assumption the installed versions break."""
    problems = [p for p in map(problem, ASSUMPTIONS) if p is not None]
    if problems:
        raise FrameworkChanged(
            "the installed sanic/websockets break what /ws relies on (edge/framework.py):\n  "
            + "\n  ".join(problems)
        )
