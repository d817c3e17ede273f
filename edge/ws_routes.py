"""``/ws``: the WebSocket endpoint, wired into an edge app with ``register_ws(app)``.

``register_ws`` sets Sanic's WebSocket limits, adds the route and listeners
that create this worker's ``Hub`` and ``Admission`` once the server runs
(``app.ctx.edge`` must exist by then) and stop the hub on shutdown.

Before the upgrade, as plain HTTP answers in the error envelope (``ws_entry``):
a 403 for an ``Origin`` not in ``LIVESCORE_WS_ORIGINS`` (when set; clients
that send no Origin, i.e. not browsers, pass), a 400 for any query parameter
(``/ws`` takes none: the one rule of every route), and the per-address
admission limits (``Admission``): a 429 ``rate_limited`` beyond
``LIVESCORE_WS_UPGRADE_RATE`` upgrades, a 429 ``too_many_connections`` at
``LIVESCORE_WS_MAX_PER_ADDRESS`` open sockets, each with ``Retry-After``.

Then the handshake (``ws_frames.accept``: the upgrade headers checked, the
accept key computed), the 101, and the socket is handed to a lean
``Connection`` of ours (``edge/ws_lean.py``, ``framework.hand_over``): Sanic's
HTTP protocol, request and connection task let go of it and end. The
connection parses the client's frames itself and does each message in
order (every message costs a token; anything wrong is answered with an
``error`` frame); an idle socket holds no task.

Most upgrades never reach the route: the door (``framework.Door``, every
connection's first protocol) gives a connection whose first bytes are a whole
``GET /ws`` upgrade to ``at_the_door``, which applies the same checks to the
raw head and, when all pass, upgrades it there, with no Sanic protocol,
request or task made for it; whatever it would not accept at once, or at all,
takes Sanic's way to ``ws_entry`` and gets its answer.

Whatever this needs of Sanic's internals (the door, the route that upgrades by
itself, the hand-over, Sanic's shutdown) goes through ``edge.framework``,
which checks it at startup.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import socket
import time
from collections.abc import Callable
from typing import Any

from sanic import HTTPResponse, Request, Sanic
from sanic.exceptions import SanicException

from edge import framework
from edge import ws_frames as wf
from edge import ws_metrics as metrics
from edge import ws_protocol as wp
from edge.errors import (
    ApiError,
    Forbidden,
    RateLimited,
    ServiceUnavailable,
    error_response,
    to_api_error,
)
from edge.instrument import REQUESTS, client_address
from edge.metrics import REGISTRY
from edge.ratelimit import RateLimiter
from edge.validation import query_params
from edge.ws_client import Session
from edge.ws_hub import Hub
from edge.ws_lean import Connection
from livescore.config import Settings
from livescore.logs import kv

log = logging.getLogger("livescore.edge.ws")

PATH = "/ws"
#: The request line of an upgrade the door takes (``at_the_door``): no query string.
REQUEST_LINE = f"GET {PATH} HTTP/1.1"
#: Kernel send buffer per WebSocket (Linux doubles it). Left to autotuning, one
#: stalled client could park up to ``tcp_wmem`` max (4 MiB) in the kernel, and
#: the send queue (counted in frames, ``LIVESCORE_WS_QUEUE``) would only start
#: filling after that. Score frames are small: 64 KiB is plenty.
SEND_BUFFER = 32 * 1024


#: Seconds a client refused for holding too many sockets is told to wait (plus jitter).
CROWDED_RETRY_S = 10
#: The rate-limit scope of /ws upgrades (its own buckets, apart from the REST limit's).
UPGRADE_SCOPE = "ws"

REFUSED = REGISTRY.counter(
    "livescore_ws_refused_total",
    "/ws upgrades answered with an HTTP error instead, by reason",
    ("reason",),
)
UPGRADES = REGISTRY.counter(
    "livescore_ws_upgrades_total",
    "/ws upgrades by where they were answered: at the door (before Sanic's HTTP "
    "machinery) or by ws_entry (Sanic's way: a head that came in pieces, say)",
    ("way",),
)
_AT_THE_DOOR = UPGRADES.labels("door")
_BY_SANIC = UPGRADES.labels("sanic")


def hub_of(app: Sanic[Any, Any]) -> Hub | None:
    return getattr(app.ctx, "ws_hub", None)


class Admission:
    """Who may open a socket, asked before the upgrade.

    * Upgrade rate per client address: a GCRA bucket of its own (scope
      ``ws``) in ``edge.ratelimit``, so the limit is shared by every node;
      like the REST limit it fails open when Redis cannot be asked.
    * Open sockets per client address, counted by this edge worker in
      memory: a count in Redis would leak when a node dies with its
      sockets, and per worker is enough to stop one address from eating a
      node (with N workers an address may hold N times the limit).

    A slot is taken before the upgrade and given back when the connection
    ends, however it ends (``ws_entry``'s ``finally``)."""

    def __init__(self, limiter: RateLimiter, max_per_address: int) -> None:
        self.limiter = limiter
        self.max_per_address = max_per_address
        #: Open (or upgrading) sockets per client address on this worker.
        self.open: dict[str, int] = {}

    def _crowded(self, address: str) -> ApiError | None:
        if self.open.get(address, 0) < self.max_per_address:
            return None
        retry = CROWDED_RETRY_S + random.randint(0, CROWDED_RETRY_S)
        return RateLimited(
            f"this address already holds {self.max_per_address} WebSockets on this node; "
            f"close some or retry in {retry}s",
            code="too_many_connections",
            headers={"Retry-After": str(retry)},
            details={"scope": "ws_connections", "limit": self.max_per_address, "retryAfter": retry},
        )

    async def admit(self, address: str) -> ApiError | None:
        """Take a slot for ``address`` (None), or the error to answer with."""
        crowded = self._crowded(address)
        if crowded is not None:  # checked first: a full address spends no upgrade token
            return crowded
        bucket = self.limiter.bucket(UPGRADE_SCOPE, address)
        if not self.limiter.spend_leased(bucket):
            decision = await self.limiter.acquire(bucket)
            if not decision.allowed:
                # spread a crowd behind one address over the budget's window
                rate = self.limiter.limit
                retry = decision.retry_after + random.randint(0, rate.seconds)
                return RateLimited(
                    f"more than {rate.count} WebSocket upgrades per {rate.seconds}s "
                    f"from this address; retry in {retry}s",
                    headers={"Retry-After": str(retry)},
                    details={"scope": "ws_upgrade", "retryAfter": retry},
                )
        crowded = self._crowded(address)  # others may have taken slots while we waited
        if crowded is not None:
            return crowded
        self.open[address] = self.open.get(address, 0) + 1
        return None

    def admit_now(self, address: str) -> bool | None:
        """Take a slot for ``address`` if that needs no wait: True. False: refused
        (the address is at its cap). None: the answer needs Redis (no token of its
        upgrade budget is leased on this worker): ``admit`` gives it. Nothing is
        taken or spent unless True."""
        if self.open.get(address, 0) >= self.max_per_address:
            return False
        if not self.limiter.spend_leased(self.limiter.bucket(UPGRADE_SCOPE, address)):
            return None
        self.open[address] = self.open.get(address, 0) + 1
        return True

    def release(self, address: str) -> None:
        left = self.open.get(address, 0) - 1
        if left > 0:
            self.open[address] = left
        else:
            self.open.pop(address, None)


def register_ws(app: Sanic[Any, Any]) -> None:
    """Add ``/ws`` and the hub's lifecycle to ``app`` (call once, before it runs).

    Raises ``framework.FrameworkChanged`` (the app does not start) when the
    installed sanic/websockets no longer do what ``/ws`` relies on."""
    framework.require()
    app.config.WEBSOCKET_MAX_SIZE = wp.MAX_CLIENT_FRAME
    # the hub pings every client itself (one loop per node, not a task per socket)
    app.config.update({"WEBSOCKET_PING_INTERVAL": None})
    app.enable_websocket()
    # a plain GET route that performs the upgrade itself, so refusals are ordinary
    # HTTP answers
    framework.upgrades_itself(ws_entry)
    app.add_route(ws_entry, PATH, methods=["GET"], name="ws")
    app.after_server_start(start_hub)
    app.before_server_stop(stop_hub)


async def start_hub(app: Sanic[Any, Any]) -> None:
    edge = app.ctx.edge
    settings = edge.settings
    app.ctx.ws_admission = Admission(
        RateLimiter(edge.redis, edge.keys, settings.ws_upgrade_rate),
        settings.ws_max_per_address,
    )
    hub = Hub(
        edge.db,
        node=settings.node_id,
        max_subscriptions=settings.ws_max_subscriptions,
        ring_size=settings.ws_ring,
    )
    # the stall probe ticks fast from the moment a change comes or an upgrade knocks
    probe = metrics.StallProbe()
    edge.loops.supervise("loop_probe", probe.run, interval=5.0)
    edge.bus.add_listener(lambda _change: probe.wake())
    edge.bus.add_listener(hub.on_message)
    edge.bus.add_gap_listener(hub.on_gap)
    hub.start(edge.loops)
    app.ctx.ws_hub = hub
    framework.at_the_door(
        app,
        REQUEST_LINE.encode() + b"\r\n",
        at_the_door(app, hub, app.ctx.ws_admission, probe.wake),
    )
    metrics.GcTimer().install()
    # what startup created lives as long as the worker: out of the collector's sight; then
    # the survivors every half second, so a full collection walks only what came since
    gc.collect()
    gc.freeze()
    freezer = metrics.GcFreezer(lambda: len(hub.sessions), lambda: hub.closed_total)
    edge.loops.supervise("gc_freeze", freezer.run, interval=5.0)
    # what leaks when connections go away without their tasks ending shows here
    REGISTRY.gauge_callback(
        "livescore_event_loop_tasks",
        "asyncio tasks alive in the edge workers' event loops",
        lambda: len(asyncio.all_tasks()),
    )


async def stop_hub(app: Sanic[Any, Any]) -> None:
    framework.at_the_door(app, None)  # upgrades while stopping take ws_entry's way
    hub = hub_of(app)
    if hub is not None:
        await hub.stop()


def _origin_refused(request: Request) -> ApiError | None:
    allowed = request.app.ctx.edge.settings.ws_origins
    origin = request.headers.get("origin")
    if allowed and origin is not None and origin not in allowed:
        log.info(kv("ws.origin_refused", origin=origin))
        return Forbidden(f"origin {origin[:100]!r} may not open {PATH}", code="forbidden_origin")
    return None


#: A crowd refused for its socket cap is logged at most once per this many seconds.
CROWDED_LOG_EVERY = 10.0
_crowded_log = {"at": 0.0, "refused": 0}


def _log_crowded(address: str, limit: int) -> None:
    _crowded_log["refused"] += 1
    now = time.monotonic()
    if now - _crowded_log["at"] >= CROWDED_LOG_EVERY:
        log.info(
            kv(
                "ws.too_many_connections",
                client=address,
                limit=limit,
                refused=int(_crowded_log["refused"]),
                note=f"refusals on this worker since the last such line (at most every "
                f"{CROWDED_LOG_EVERY:g}s)",
            )
        )
        _crowded_log.update(at=now, refused=0)


def _refuse(reason: str, error: ApiError) -> HTTPResponse:
    REFUSED.labels(reason).inc()
    REQUESTS.labels(PATH, "GET", str(error.status)).inc()
    return error_response(error)


async def ws_entry(request: Request) -> HTTPResponse | None:
    """``GET /ws``: the checks and admission limits, then the upgrade and the session."""
    forbidden = _origin_refused(request)
    if forbidden is not None:
        return _refuse("origin", forbidden)
    if request.query_string:
        try:
            query_params(request, ())
        except ApiError as exc:
            return _refuse("query", exc)
    admission: Admission | None = getattr(request.app.ctx, "ws_admission", None)
    if admission is None:
        return _refuse(
            "starting",
            ServiceUnavailable(
                "the node is still starting; retry shortly",
                code="starting",
                headers={"Retry-After": "1"},
            ),
        )
    address = client_address(request)
    refused = await admission.admit(address)
    if refused is not None:
        if refused.code == "too_many_connections":
            _log_crowded(address, admission.max_per_address)
            return _refuse("connections", refused)
        return _refuse("rate", refused)
    headers = request.headers
    try:
        head = wf.accept(
            headers.getall("connection", []),
            headers.getall("upgrade", []),
            headers.getall("sec-websocket-key", []),
            headers.getall("sec-websocket-version", []),
        )
    except wf.HandshakeError as exc:  # 426 for a plain GET, 400 for a bad key or version
        admission.release(address)
        error = to_api_error(SanicException(str(exc), status_code=exc.status), request)
        REQUESTS.labels(PATH, "GET", str(error.status)).inc()
        return error_response(error)
    _upgrade(request, head, admission, address)
    return None


def _upgrade(request: Request, head: bytes, admission: Admission, address: str) -> None:
    """Write the 101 and hand the socket to a lean ``Connection`` (``edge/ws_lean.py``):
    from here on no Sanic object, request or task is kept for it."""
    transport: Any = request.transport
    hub = hub_of(request.app)
    if transport.is_closing() or hub is None:  # gone already, or starting: Sanic closes it
        admission.release(address)
        if hub is None and not transport.is_closing():
            transport.write(head + wf.close_frame(1013, "starting up; try again"))
        return
    connection = _open(transport, head, hub, admission, address)
    _BY_SANIC.inc()
    received, connections = framework.hand_over(request, connection)
    _go_live(connection, received, connections, request.port, request.app.ctx.edge.settings)


def _open(transport: Any, head: bytes, hub: Hub, admission: Admission, address: str) -> Connection:
    """Write the 101 and the welcome frame, in one write (one system call, not two)."""
    transport.write(head + hub.welcome_frame)
    REQUESTS.labels(PATH, "GET", "101").inc()
    return Connection(transport, hub, admission, address)


def _go_live(
    connection: Connection,
    received: bytes,
    connections: set[Any] | None,
    port: int,
    settings: Settings,
) -> None:
    """The connection's session, attached to the hub; then it reads ``received``."""
    hub = connection.hub
    transport = connection.transport
    address = connection.address
    try:
        session = Session(
            transport,
            connection,
            connection,
            queue_limit=settings.ws_queue,
            # (the admission's address is the client's: no second look at forwarding)
            ident=f"{address}:{port}",
            pings=connection,
        )
        _cap_send_buffer(session.sock or transport.get_extra_info("socket"))
        hub.attach(session)
    except Exception:  # the socket is ours now: close it rather than leave it hanging
        log.exception(kv("ws.start_failed", client=address))
        connection.fail(wp.CLOSE_INTERNAL, "the server failed to start this connection")
        return
    connection.start(session, received, connections)


def at_the_door(
    app: Sanic[Any, Any], hub: Hub, admission: Admission, waking: Callable[[], None]
) -> framework.DoorHook:
    """``/ws``'s upgrade taken at the door (``framework.Door``), before Sanic makes a
    protocol, request or task for it: the connection's first bytes, when they are a
    whole, valid upgrade request for ``/ws`` that ``ws_entry`` would accept (its
    origin allowed, no query string, its address under both limits), are answered
    with the 101 here, with the same frames, session and counters. An admission
    that must ask Redis (an address's first upgrades on this worker, before it
    holds a lease of their budget) is awaited at the door. Anything else is left to
    Sanic and ``ws_entry``, which answers it as it always did (refusals, a head that
    came in pieces); nothing was taken or written for it then. An upgrade the rate
    limit refuses after the wait goes the same way (``ws_entry`` asks Redis again)."""
    settings = app.ctx.edge.settings
    origins = settings.ws_origins
    proxied = bool(settings.proxies_count)
    limit = framework.header_limit(app)

    def upgrade(transport: Any, data: bytes, connections: set[Any]) -> framework.DoorAnswer:
        waking()  # the stall probe: measure this upgrade's (and its storm's) stalls closely
        head = wf.read_upgrade_head(data, REQUEST_LINE, limit)
        if head is None:
            return False
        origin = head.values("origin")
        if origins and origin and origin[0] not in origins:
            return False
        answer = head.answer()
        if answer is None:
            return False
        peer = transport.get_extra_info("peername")
        if not isinstance(peer, tuple) or transport.is_closing():
            return False
        address = (proxied and framework.forwarded_for(head.pairs, app)) or peer[0]

        def take(more: bytes) -> None:
            if transport.is_closing():  # gone while its admission was asked
                admission.release(address)
                return
            connection = _open(transport, answer, hub, admission, address)
            _AT_THE_DOOR.inc()
            transport.set_protocol(connection)
            _go_live(connection, head.rest + more, connections, peer[1], settings)

        admitted = admission.admit_now(address)
        if admitted:
            take(b"")
            return True
        if admitted is False:
            return False
        return _admitted_later(admission, address, take)

    return upgrade


async def _admitted_later(
    admission: Admission, address: str, take: framework.DoorTake
) -> framework.DoorTake | None:
    """The door's wait for an admission that asks Redis: ``take`` once admitted, None
    for a refusal (``ws_entry`` answers it)."""
    refused = await admission.admit(address)
    return take if refused is None else None


def _cap_send_buffer(sock: Any) -> None:
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
    except OSError as exc:
        log.warning(kv("ws.sndbuf_failed", error=repr(exc)))
