"""``GET /sse``: Server-Sent Events, served by this worker's WebSocket hub.

    GET /sse?matchId=12,13&competitionId=2[&since=12:40,13:7]
    Last-Event-ID: 12:40,13:7          (what EventSource sends on reconnecting)

Each match is joined as ``/ws`` joins it (``Hub.subscribe``): a snapshot, or,
with a position from ``Last-Event-ID`` (which wins: it is newer than the
URL's) or ``since``, every change after it in order and exactly once, then
live; a position the log cannot replay gets the same ``resume_unavailable``
error event and a fresh snapshot as on ``/ws``. Competitions are joined as
``subscribe competitionId`` joins them; a match of a resumed position that
is not named in ``matchId`` is joined at its position too (it came through a
competition).

Answered as plain HTTP errors before the stream starts: a 400 for a bad
query or position, a 404 when every named match or competition is unknown, a
429 from the same per-address admission as ``/ws`` (the slots are shared),
a 503 while the node starts. Once streaming, the limits are the hub's: a
client that stops reading is warned (``slow_consumer`` event) and then
disconnected, exactly as a WebSocket client is. A comment line every
``LIVESCORE_SSE_HEARTBEAT`` seconds (15)
keeps proxies from closing a quiet stream.
"""

from __future__ import annotations

import logging
import socket
from contextlib import suppress
from typing import Any

from sanic import HTTPResponse, Request, Sanic

from edge import sse
from edge import ws_protocol as wp
from edge.errors import (
    ApiError,
    BadRequest,
    NotFoundError,
    ServiceUnavailable,
    error_response,
)
from edge.instrument import REQUESTS, client_address
from edge.validation import query_params
from edge.ws_hub import Hub
from edge.ws_routes import SEND_BUFFER, Admission, hub_of
from livescore.logs import kv
from livescore.waiting import wait_event

log = logging.getLogger("livescore.edge.sse")

PATH = "/sse"
PARAMS = ("matchId", "competitionId", "since")


def _ids(params: dict[str, str], name: str, limit: int) -> list[int]:
    raw = params.get(name)
    if raw is None:
        return []
    try:
        ids = [int(part) for part in raw.split(",")]
    except ValueError:
        raise BadRequest(
            f"{name} is a comma-separated list of ids", code="invalid_parameter"
        ) from None
    if any(not 1 <= i <= wp.MAX_ID for i in ids) or len(set(ids)) != len(ids):
        raise BadRequest(f"{name}: ids are positive integers, each once", code="invalid_parameter")
    if len(ids) > limit:
        raise BadRequest(f"{name}: at most {limit} per stream", code="invalid_parameter")
    return ids


def _positions(
    request: Request, params: dict[str, str], match_ids: list[int], limit: int
) -> dict[int, int]:
    header = request.headers.get("last-event-id")
    text = header if header else params.get("since")
    if not text:
        return {}
    if header is None and text.isdigit():  # ?since=40 with one matchId
        if len(match_ids) != 1:
            raise BadRequest(
                "since=SEQ goes with exactly one matchId; else give since=matchId:seq,...",
                code="invalid_parameter",
            )
        text = f"{match_ids[0]}:{text}"
    try:
        return sse.parse_positions(text, limit=limit)
    except sse.BadPosition as exc:
        where = "Last-Event-ID" if header else "since"
        raise BadRequest(
            f"{where}: {exc}; expected matchId:seq[,matchId:seq...]", code="invalid_parameter"
        ) from None


def _starting() -> ApiError:
    return ServiceUnavailable(
        "the node is still starting; retry shortly", code="starting", headers={"Retry-After": "1"}
    )


def _answer(request: Request, error: ApiError) -> HTTPResponse:
    REQUESTS.labels(PATH, "GET", str(error.status)).inc()
    response = error_response(error)
    cors = getattr(request.app.ctx, "cors", None)
    if cors is not None:
        cors.decorate(request, response)
    return response


async def sse_entry(request: Request) -> HTTPResponse | None:
    hub = hub_of(request.app)
    admission: Admission | None = getattr(request.app.ctx, "ws_admission", None)
    if hub is None or admission is None:
        return _answer(request, _starting())
    try:
        params = query_params(request, PARAMS)
        limit = hub.max_subscriptions
        match_ids = _ids(params, "matchId", limit)
        competition_ids = _ids(params, "competitionId", limit)
        if not match_ids and not competition_ids:
            raise BadRequest(
                "name what to follow: matchId=ID[,ID...] and/or competitionId=ID[,...]",
                code="invalid_parameter",
            )
        positions = _positions(request, params, match_ids, limit)
    except ApiError as exc:
        return _answer(request, exc)
    address = client_address(request)
    refused = await admission.admit(address)
    if refused is not None:
        return _answer(request, refused)
    try:
        return await _stream(request, hub, match_ids, competition_ids, positions)
    finally:
        admission.release(address)


async def _stream(
    request: Request,
    hub: Hub,
    match_ids: list[int],
    competition_ids: list[int],
    positions: dict[int, int],
) -> HTTPResponse | None:
    edge = request.app.ctx.edge
    sock = request.transport.get_extra_info("socket")
    if sock is not None:  # as on /ws: a stalled reader fills its queue, not the kernel
        with suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
    adapter = sse.SseTransport(request.transport, {})
    ident = f"sse {request.client_ip}:{request.port}"

    def close(code: int = 1000, reason: str = "") -> None:
        """The hub closes a stream only when its client stopped reading (after a
        ``slow_consumer`` warning event): nothing more would get through."""
        adapter.transport.abort()
        session.done.set()

    session = sse.SseSession(adapter, close, queue_limit=edge.settings.ws_queue, ident=ident)
    hub.attach(session)
    try:
        refused = await _join(hub, session, match_ids, competition_ids, positions)
        if refused is not None:
            return _answer(request, refused)
        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        cors = getattr(request.app.ctx, "cors", None)
        if cors is not None:
            allowed = cors.allowed(request.headers.get("origin"))
            if allowed is not None:
                headers["Access-Control-Allow-Origin"] = allowed
                headers["Vary"] = "Origin"
        response = await request.respond(headers=headers, content_type="text/event-stream")
        REQUESTS.labels(PATH, "GET", "200").inc()
        await response.send(sse.PREAMBLE)  # the head and the preamble go out now
        adapter.start()
        log.info(kv("sse.open", client=ident, matches=len(session.reasons)))
        while not session.closed:
            if not await wait_event(session.done, edge.settings.sse_heartbeat):
                await response.send(sse.HEARTBEAT)  # also tells Sanic the stream is alive
        return None
    finally:
        hub.detach(session)


async def _join(
    hub: Hub,
    session: sse.SseSession,
    match_ids: list[int],
    competition_ids: list[int],
    positions: dict[int, int],
) -> ApiError | None:
    """Join everything asked for; a refusal becomes an error event of the stream,
    unless nothing could be joined: then the error to answer instead."""
    errors: list[wp.ProtocolError] = []
    joined = False
    targets = [(m, True) for m in match_ids] + [(m, True) for m in positions if m not in match_ids]
    targets += [(c, False) for c in competition_ids]
    for ident, is_match in targets:
        try:
            if is_match:
                await hub.subscribe(session, ident, positions.get(ident))
            else:
                await hub.subscribe_competition(session, ident)
            joined = True
        except wp.ProtocolError as exc:
            errors.append(exc)
            session.send_payload(exc.frame())
    if joined:
        return None
    if any(e.code == "unavailable" for e in errors):
        return ServiceUnavailable(
            "the database is not answering; try again shortly",
            code="unavailable",
            headers={"Retry-After": "2"},
        )
    if all(e.code in ("unknown_match", "unknown_competition") for e in errors):
        return NotFoundError("; ".join(e.message for e in errors), code="not_found")
    return BadRequest("; ".join(e.message for e in errors), code="invalid_parameter")


def register_sse(app: Sanic[Any, Any]) -> None:
    """Add ``/sse`` (it needs ``/ws``'s hub and admission: register after ``register_ws``)."""
    app.add_route(sse_entry, PATH, methods=["GET"], name="sse")
