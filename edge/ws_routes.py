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

Each connection is read by one loop: every frame costs a token, is parsed
(``edge.ws_protocol``) and handled in order; anything wrong is answered
with an ``error`` frame, never an exception out of the handler.

Whatever this needs of Sanic's and websockets' internals (the upgrade after
admission, the transport, the state watch, releasing the frame assembler)
goes through ``edge.framework``, which checks it at startup.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import socket
import time
from typing import Any

from sanic import HTTPResponse, Request, Sanic, Websocket
from websockets.exceptions import ConnectionClosed
from websockets.protocol import CLOSING, OPEN

from edge import framework
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
from edge.ws_client import Closer, Session
from edge.ws_hub import Hub
from livescore.logs import kv

log = logging.getLogger("livescore.edge.ws")

PATH = "/ws"
#: At most one ``rate_limited`` error frame per this many seconds per client.
RATE_ERROR_EVERY = 1.0
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
    edge.bus.add_listener(hub.on_message)
    edge.bus.add_gap_listener(hub.on_gap)
    hub.start(edge.loops)
    app.ctx.ws_hub = hub
    probe = metrics.StallProbe()
    edge.loops.supervise("loop_probe", probe.run, interval=5.0)
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
    try:
        await framework.upgrade(request, ws_handler)
    except Exception as exc:  # the handshake failed (after it, Sanic keeps errors inside)
        if getattr(request.ctx, "ws_upgraded", False):
            raise
        error = to_api_error(exc, request)
        REQUESTS.labels(PATH, "GET", str(error.status)).inc()
        return error_response(error)
    finally:
        admission.release(address)
    return None


async def ws_handler(request: Request, ws: Websocket) -> None:
    request.ctx.ws_upgraded = True
    REQUESTS.labels(PATH, "GET", "101").inc()
    hub = hub_of(request.app)
    transport = framework.transport_of(ws)
    if hub is None or transport is None:
        await ws.close(1013, "starting up; try again")
        return
    edge = request.app.ctx.edge
    _cap_send_buffer(transport)
    proto = framework.protocol_of(ws)
    session = Session(
        transport,
        proto,
        _closer(ws),
        queue_limit=edge.settings.ws_queue,
        ident=f"{request.client_ip}:{request.port}",
        pings=framework.pings_of(ws),
    )
    hub.attach(session)
    framework.watch_state(proto, session.left_open)
    session.send_payload(wp.welcome(hub.node))
    last_rate_error = 0.0
    try:
        while not session.closed:
            message = await ws.recv()
            if message is None or session.closed:
                continue
            now = time.monotonic()
            if not session.allow(now):
                if not session.closed and now - last_rate_error >= RATE_ERROR_EVERY:
                    last_rate_error = now
                    _tell(session, wp.ProtocolError("rate_limited", _rate_message()))
                continue
            await handle(hub, session, message)
        await _linger(ws)
    finally:
        hub.detach(session)
        framework.stop_reading(ws)


#: Close codes for a client that is reading but misbehaving: it should get to
#: read why, so the node keeps reading (and dropping) what it still sends.
_LINGERING_CLOSES = frozenset({wp.CLOSE_FLOOD, wp.CLOSE_BAD_CLIENT})
#: How long a lingering close waits for the client's close frame.
LINGER_S = 5.0


def _closer(ws: Websocket) -> Closer:
    """How a session closes its socket.

    A slow consumer or a dead peer is failed at once (``fail_connection``
    stops reading and drops the connection). A client closed for flooding or
    invalid frames is still sending: stopping reading would make the kernel
    answer its next bytes with a reset, which destroys the close frame before
    the client reads it. So only the close frame is sent; the handler lingers,
    discarding what arrives, until the client answers it (or ``LINGER_S``)."""

    proto = framework.protocol_of(ws)

    def close(code: int = 1000, reason: str = "") -> Any:
        if code not in _LINGERING_CLOSES or proto.state is not OPEN:
            return framework.fail(ws, code, reason)
        framework.send_close_only(ws, code, reason)
        return None

    return close


async def _linger(ws: Websocket) -> None:
    """After a lingering close: read and drop until the client closes too."""
    if framework.protocol_of(ws).state is not CLOSING:
        return
    try:
        async with asyncio.timeout(LINGER_S):
            while await ws.recv() is not None:
                pass
    except TimeoutError:
        framework.fail(ws, 1006, "no close frame from the client")
    except ConnectionClosed:
        return


def _cap_send_buffer(transport: Any) -> None:
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
    except OSError as exc:
        log.warning(kv("ws.sndbuf_failed", error=repr(exc)))


def _rate_message() -> str:
    from edge.ws_client import ACTIONS_BURST, ACTIONS_PER_SECOND

    return (
        f"more than {ACTIONS_PER_SECOND:g} actions per second (burst {ACTIONS_BURST:g}); "
        "this action was not done"
    )


def _tell(session: Session, error: wp.ProtocolError) -> None:
    metrics.ERRORS.labels(error.code).inc()
    session.send_payload(error.frame())


async def handle(hub: Hub, session: Session, message: str | bytes) -> None:
    """Do one client frame; errors become ``error`` frames."""
    try:
        action = wp.parse_action(message)
    except wp.ProtocolError as exc:
        session.invalid()
        _tell(session, exc)
        return
    session.valid()
    try:
        match action:
            case wp.Ping():
                session.send_payload(wp.PONG)
            case wp.Subscribe(match_id, since, latest):
                await hub.subscribe(session, match_id, since, latest=latest)
            case wp.Unsubscribe(match_id):
                hub.unsubscribe(session, match_id)
                session.send_payload(wp.unsubscribed(match_id=match_id))
            case wp.SubscribeCompetition(competition_id):
                await hub.subscribe_competition(session, competition_id)
            case wp.UnsubscribeCompetition(competition_id):
                hub.unsubscribe_competition(session, competition_id)
                session.send_payload(wp.unsubscribed(competition_id=competition_id))
    except wp.ProtocolError as exc:
        _tell(session, exc)
    except Exception:  # a bug must cost one answer, not the connection or the node
        log.exception(kv("ws.action_failed", client=session.ident, action=type(action).__name__))
        _tell(session, wp.ProtocolError("internal", "the server failed on this action"))
