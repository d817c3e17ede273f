"""Every reliance of the edge on sanic, websockets and uvloop internals, and on the
kernel's ``struct tcp_info`` layout: the only module that touches them.

The WebSocket path (``edge/ws_routes.py``, ``ws_lean.py``, ``ws_client.py``, ``ws_hub.py``)
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
  ``is_websocket``     a route handler marked ``is_websocket`` may return None
                       (``Sanic.handle_request`` skips its response checks).
  ``hand_over``        after the 101, the transport is given to ``/ws``'s own
                       protocol (``edge/ws_lean.py``): Sanic's ``WebSocketProtocol``
                       keeps the bytes received after the request in
                       ``recv_buffer``, its transport in ``transport`` (cleared, so
                       its ``close()`` with no transport returns quietly), its
                       open connections in ``connections`` and its timeout check's
                       timer in ``_callback_check_timeouts`` (cancelled: it would
                       keep the protocol alive, in a cycle, for 30 s); ``Http.http1`` lets an
                       upgrade request's handler end with no response and leaves
                       its loop (so Sanic's connection task ends).
  ``shutdown``         Sanic's shutdown asks every member of ``connections``
                       ``close_if_idle()`` and then ``abort()``s what is left.
  ``door``             Sanic's server makes each connection's protocol with the keyword
                       arguments ``loop``, ``connections``, ``signal``, ``app``,
                       ``state``, ``unix`` (``Door``, the edge's first protocol, keeps
                       them and makes Sanic's own protocol with them, and
                       ``runners._build_protocol_kwargs``, when the connection is not
                       one it takes itself).
  ``processed_headers`` Sanic's HTTP/1 writer takes a response's header lines from
                       its ``processed_headers`` (the cached reads' ``EncodedResponse``
                       hands back lines encoded once, not per request).
uvloop (checked by the test only: it needs a running loop)
  ``TCPTransport.write`` on a transport whose socket closed raises
  ``RuntimeError`` (``WRITE_AFTER_CLOSE``), before ``connection_lost`` runs;
  ``set_protocol`` gives later ``data_received`` calls to the new protocol.
Linux
  ``TCP_INFO``: ``tcpi_last_data_recv``/``tcpi_last_ack_recv`` at bytes 52/56
  (checked by the test on a real socket; without it every quiet-or-not
  client is simply pinged).

Used inline, for speed, rather than through a function (keep them in step):
``Hub._deliver``, ``Session.send`` and ``ws_lean.Connection`` write to the
transport directly and catch ``WRITE_AFTER_CLOSE`` (a name looked up only when
the write raises: no cost per client per frame).
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

from sanic import HTTPResponse, Request, Sanic
from sanic.compat import Header
from sanic.headers import parse_forwarded, parse_xforwarded
from sanic.helpers import has_message_body
from sanic.http import Http
from sanic.response.types import BaseHTTPResponse
from sanic.server import runners
from sanic.server.protocols.http_protocol import HttpProtocol
from sanic.server.protocols.websocket_protocol import WebSocketProtocol

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

_MARK = "is_websocket"


def upgrades_itself(route: Callable[..., Any]) -> None:
    """Mark a plain GET route that performs the upgrade itself (writes the 101 and
    calls ``hand_over``): Sanic skips its response checks for it, so it may return None
    after upgrading and an ordinary ``HTTPResponse`` when it refuses."""
    setattr(route, _MARK, True)


def hand_over(request: Request, protocol: asyncio.Protocol) -> tuple[bytes, set[Any] | None]:
    """Make ``protocol`` the connection's protocol, after the 101 was written; return
    the bytes Sanic received after the request (frames sent right behind the
    handshake) and Sanic's set of open connections (the ones its shutdown asks to
    ``close_if_idle`` and then ``abort``s), which ``protocol`` joins.

    Sanic's HTTP protocol lets go: its ``transport`` is cleared, so the
    ``close()`` at the end of its connection task (which ends once the route
    returns: an upgraded request leaves the HTTP loop) leaves the socket alone;
    it leaves the connections set; nothing of it, the request or the task is
    kept by the connection (``hand_over`` probe)."""
    transport: Any = request.transport
    http: Any = transport.get_protocol()
    buffered: bytearray = http.recv_buffer
    received = bytes(buffered)
    buffered.clear()
    connections: set[Any] | None = getattr(http, "connections", None)
    if connections is not None:
        connections.discard(http)
    timer = http._callback_check_timeouts  # its handle and the protocol refer to each other
    if timer is not None:
        timer.cancel()
        http._callback_check_timeouts = None
    http.transport = None
    transport.set_protocol(protocol)
    transport.resume_reading()
    return received, connections


#: Header lines already encoded, by (name, value): the hot reads send the same few
#: (content type, cache control, CORS, an entry's ETag and length) again and again.
_LINES: dict[tuple[str, object], tuple[bytes, bytes]] = {}
_LINES_MAX = 4096
_sanitize = BaseHTTPResponse._sanitize_header_value


def _line(name: str, value: object) -> tuple[bytes, bytes]:
    key = (name, value)
    line = _LINES.get(key)
    if line is None:
        if len(_LINES) >= _LINES_MAX:
            _LINES.clear()
        line = (
            _sanitize(name).encode("ascii"),
            _sanitize(f"{value}").encode(errors="surrogateescape"),
        )
        _LINES[key] = line
    return line


class EncodedResponse(HTTPResponse):
    """An ``HTTPResponse`` whose header lines are sanitized and encoded once per
    distinct (name, value) in the worker, then reused: byte for byte what Sanic's
    ``processed_headers`` makes per response (it was 10-15% of a cached read's CPU).
    Headers added later (CORS, by the instrumented handler) are included as usual."""

    @property
    def processed_headers(self) -> list[tuple[bytes, bytes]]:  # type: ignore[override]
        headers = self.headers
        if has_message_body(self.status):  # type: ignore[no-untyped-call]
            headers.setdefault("content-type", self.content_type)
        return [_line(name, value) for name, value in headers.items()]


# -- the door: every connection's first protocol -------------------------------------------

#: What the door's hook answers (``at_the_door``): True, it took the connection; False,
#: Sanic's protocol is to serve it; or an awaitable, the answer is not known yet (say,
#: a rate limit must ask Redis): it gives the function that takes the connection
#: (called with the bytes that came meanwhile, the connection reading again), or None
#: for Sanic's after all.
DoorTake = Callable[[bytes], None]
DoorAnswer = bool | Awaitable[DoorTake | None]
DoorHook = Callable[[Any, bytes, "set[Any]"], DoorAnswer]


def at_the_door(app: Sanic[Any, Any], prefix: bytes | None, hook: DoorHook | None = None) -> None:
    """Offer every connection whose first bytes start with ``prefix`` to ``hook``
    before Sanic sees it (``Door``); ``prefix`` None takes the offer back."""
    app.ctx.door = None if prefix is None or hook is None else (prefix, hook)


def header_limit(app: Sanic[Any, Any]) -> int:
    """The longest request head Sanic reads (it answers a longer one with 413)."""
    return Http.HEADER_MAX_SIZE or app.config.REQUEST_MAX_HEADER_SIZE


def forwarded_for(pairs: list[tuple[str, str]], app: Sanic[Any, Any]) -> str:
    """The client address the trusted proxies forwarded in these headers, as Sanic's
    ``request.remote_addr`` reads it ("" when they forwarded none)."""
    headers = Header(pairs)
    config = app.config
    forwarded = parse_forwarded(headers, config) or parse_xforwarded(headers, config) or {}
    return str(forwarded.get("for", ""))


class Door(asyncio.Protocol):
    """The first protocol of every connection of an edge (``app.run(protocol=Door)``).

    Sanic builds one per accepted connection with the keyword arguments it gives
    its own protocol. Its first bytes decide: a request the app takes itself at
    the door (``at_the_door``: ``/ws``'s upgrade, ``edge/ws_routes.py``) is given to
    the hook, with no Sanic protocol, request or task made for it; anything else
    (and anything the hook leaves) gets Sanic's own protocol, which then serves the
    connection as if it had been there from the start. While the hook's answer is
    not known yet, nothing more is read (the connection's reading is paused).
    Until it is handed on it is one of Sanic's ``connections`` (its shutdown
    closes it), and it is closed if nothing comes within ``REQUEST_TIMEOUT``
    seconds, as Sanic closes a connection that sends nothing."""

    __slots__ = ("data", "kwargs", "timer", "transport", "waiting")

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.transport: Any = None
        self.timer: asyncio.TimerHandle | None = None
        #: while the hook's answer is awaited: that task, and the bytes received
        self.waiting: asyncio.Future[None] | None = None
        self.data = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        kwargs = self.kwargs
        self.transport = transport
        kwargs["connections"].add(self)
        self.timer = kwargs["loop"].call_later(
            kwargs["app"].config.REQUEST_TIMEOUT, self.close_if_idle
        )

    def data_received(self, data: bytes) -> None:
        if self.waiting is not None:  # (read before the pause took effect)
            self.data += data
            return
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        kwargs = self.kwargs
        transport = self.transport
        door = getattr(kwargs["app"].ctx, "door", None)
        if door is None or not data.startswith(door[0]):
            self._to_sanic(data)
            return
        try:
            answer = door[1](transport, data, kwargs["connections"])
        except Exception:  # what it did to the socket is unknown: close it
            self._failed(door[0])
            return
        if answer is True:
            kwargs["connections"].discard(self)
        elif answer is False:
            self._to_sanic(data)
        else:
            transport.pause_reading()
            self.data = b""
            self.waiting = asyncio.ensure_future(self._later(answer, data, door[0]))

    async def _later(self, answer: Awaitable[DoorTake | None], data: bytes, prefix: bytes) -> None:
        try:
            take = await answer
        except Exception:
            self.waiting = None
            self._failed(prefix)
            return
        self.waiting = None
        more, self.data = self.data, b""
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.resume_reading()  # (data is read once this returns: after the hand-over)
        if take is not None:  # it takes the socket, even one closed meanwhile (to let go)
            self.kwargs["connections"].discard(self)
            try:
                take(more)
            except Exception:
                self._failed(prefix)
            return
        if transport is not None:
            self._to_sanic(data + more)

    def _to_sanic(self, data: bytes) -> None:
        kwargs = self.kwargs
        transport = self.transport
        kwargs["connections"].discard(self)
        protocol = sanic_protocol(kwargs)
        protocol.connection_made(transport)
        transport.set_protocol(protocol)
        protocol.data_received(data)

    def _failed(self, prefix: bytes) -> None:
        log.exception(kv("edge.door_failed", prefix=prefix.decode(errors="replace")))
        self.kwargs["connections"].discard(self)
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.kwargs["connections"].discard(self)
        self.transport = None

    def close_if_idle(self) -> bool:
        """Sanic's shutdown, or nothing came within ``REQUEST_TIMEOUT``: close."""
        if self.transport is not None:
            self.transport.close()
        return True

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


def sanic_protocol(kwargs: dict[str, Any]) -> asyncio.Protocol:
    """The protocol Sanic would have made for the connection (``app.run`` picks
    ``WebSocketProtocol`` once the app enabled WebSockets, else ``HttpProtocol``)."""
    app = kwargs["app"]
    cls = WebSocketProtocol if app.websocket_enabled else HttpProtocol
    extra: dict[str, Any] = runners._build_protocol_kwargs(cls, app.config)
    protocol: asyncio.Protocol = cls(**kwargs, **extra)
    return protocol


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


def _probe_hand_over() -> str | None:
    slots = {name for cls in WebSocketProtocol.__mro__ for name in getattr(cls, "__slots__", ())}
    missing = sorted(
        {"recv_buffer", "transport", "connections", "_callback_check_timeouts"} - slots
    )
    if missing:
        return f"Sanic's WebSocketProtocol no longer has {', '.join(missing)} (hand_over)"
    http: Any = WebSocketProtocol.__new__(WebSocketProtocol)
    http.transport = None
    http.websocket = None
    http._callback_check_timeouts = None
    try:
        http.close()
    except Exception as exc:
        return (
            "Sanic's WebSocketProtocol.close() with no transport no longer returns quietly "
            f"({exc!r}): the end of its connection task would close a handed-over socket"
        )
    try:
        source = inspect.getsource(Http.http1)
    except (OSError, TypeError) as exc:
        return f"Sanic's Http.http1 source cannot be read ({exc!r})"
    if "not self.upgrade_websocket" not in source or "self.stage is Stage.IDLE" not in source:
        return (
            "Sanic's Http.http1 no longer lets an upgrade request's handler end without a "
            "response and leave the HTTP loop (hand_over relies on both)"
        )
    return None


def _probe_shutdown() -> str | None:
    try:
        source = inspect.getsource(runners)
    except (OSError, TypeError) as exc:
        return f"sanic.server.runners' source cannot be read ({exc!r})"
    if "close_if_idle()" not in source or ".abort()" not in source:
        return (
            "Sanic's shutdown no longer asks its connections close_if_idle() and then "
            "abort()s them (a handed-over /ws connection would not hear of it)"
        )
    return None


def _probe_processed_headers() -> str | None:
    try:
        writer = inspect.getsource(Http.http1_response_header)
        made = inspect.getsource(BaseHTTPResponse.__dict__["processed_headers"].fget)
    except (OSError, TypeError, KeyError, AttributeError) as exc:
        return f"Sanic's response header path cannot be read ({exc!r})"
    if "res.processed_headers" not in writer:
        return (
            "Sanic's Http.http1_response_header no longer takes the header lines from "
            "the response's processed_headers (EncodedResponse's lines would be ignored)"
        )
    if "_sanitize_header_value" not in made or 'setdefault("content-type"' not in made:
        return (
            "Sanic's processed_headers no longer sanitizes each header and sets the content "
            "type (EncodedResponse, which does what it did, must do what it does now)"
        )
    return None


#: What Sanic's server gives its protocol's constructor (and ``Door`` passes on).
_PROTOCOL_KWARGS = ("loop", "connections", "signal", "app", "state", "unix")


def _probe_door() -> str | None:
    if not callable(getattr(runners, "_build_protocol_kwargs", None)):
        return (
            "sanic.server.runners._build_protocol_kwargs is gone (Door makes Sanic's own "
            "protocol with it)"
        )
    try:
        source = inspect.getsource(runners._serve_http_1)
        params = inspect.signature(HttpProtocol.__init__).parameters
    except (OSError, TypeError, AttributeError) as exc:
        return f"Sanic's server setup cannot be read ({exc!r})"
    missing = [n for n in _PROTOCOL_KWARGS if f"{n}={n}" not in source or n not in params]
    if missing:
        return (
            "Sanic's server no longer makes its protocol with "
            f"{', '.join(f'{n}=' for n in missing)} (Door hands them to Sanic's protocol)"
        )
    return None


@dataclass(frozen=True)
class Assumption:
    name: str
    package: str
    probe: Callable[[], str | None]


ASSUMPTIONS = (
    Assumption("is_websocket", "sanic", _probe_is_websocket),
    Assumption("hand_over", "sanic", _probe_hand_over),
    Assumption("shutdown", "sanic", _probe_shutdown),
    Assumption("processed_headers", "sanic", _probe_processed_headers),
    Assumption("door", "sanic", _probe_door),
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
