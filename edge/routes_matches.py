"""/api/matches: list, create, one match, its commentary and its change log
(the scorer's writes, commentary included, are ``edge.routes_scoring``'s).

Every read (one match, a list page, a commentary page, a change-log page) is
served from the worker's caches (``edge.cache``) as pre-encoded bytes with a
precomputed ETag; a miss reads PostgreSQL once for everybody asking and
offers the result to the cache. Writes go through
the store: ``create_match`` for a new match, ``apply_change`` for anything
that changes one (so the change is numbered and published). Bodies are
checked against their declarations in ``edge.requests`` (the same ones the
OpenAPI document is generated from); only what needs the database (does the
team id exist, does it play in this match) is checked here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
from sanic import HTTPResponse, Request

from edge import routes_scoring
from edge.auth import require_api_key
from edge.cache import SubPageLoader
from edge.errors import ConflictError, Gone, NotFoundError, ValidationFailed
from edge.instrument import add_route
from edge.requests import NewMatchBody, parse
from edge.responses import cached_json, created_json
from edge.state import EdgeApp, EdgeState, state
from edge.validation import (
    MAX_ID,
    day_param,
    decode_cursor,
    encode_cursor,
    enum_list_param,
    id_param,
    int_param_or,
    json_body,
    query_params,
)
from livescore.errors import Conflict, NotFound
from livescore.model import MatchPatch, MatchStatus
from store import change_codec
from store.changes import changes_since, oldest_kept_seq
from store.db import Conn
from store.events import list_events
from store.matches import (
    MatchFilter,
    NewMatch,
    create_match,
    get_match,
    list_matches,
    match_seq,
)
from store.reference import get_or_create_competition, get_or_create_team, require
from store.writes import Change, apply_change

STATUSES = tuple(s.value for s in MatchStatus)
LIST_PARAMS = ("status", "competition", "date", "team", "limit", "cursor")
COMMENTARY_PARAMS = ("limit", "before")
CHANGES_PARAMS = ("since", "limit")


def _match_id(raw: int) -> int:
    if not 1 <= raw <= MAX_ID:
        raise NotFoundError(f"match {raw} not found", details={"kind": "match"})
    return raw


async def _written(edge: EdgeState, match_id: int, changes: list[Change]) -> None:
    """Our own write: this worker's cache shows it before we answer (read your writes),
    without waiting for the relay's echo."""
    if changes:
        await edge.caches.written(match_id, changes[-1].seq)


# -- reads ------------------------------------------------------------------------------


async def list_matches_route(request: Request) -> HTTPResponse:
    edge = state(request)
    # Pages are keyed by the raw query string: a string that was served before was
    # valid then and means the same now, so the hot path skips parsing it again.
    key = request.query_string
    entry = edge.caches.cached_page(key)
    if entry is None:
        entry = await edge.caches.page(key, _page_loader(request, edge))
    return cached_json(request, entry.body, entry.etag)


def _page_loader(request: Request, edge: EdgeState) -> Callable[[], Awaitable[bytes]]:
    """Validate the list query (400s here) and return what reads its page."""
    params = query_params(request, LIST_PARAMS)
    flt = MatchFilter(
        statuses=tuple(MatchStatus(s) for s in enum_list_param(params, "status", STATUSES)),
        competition_id=id_param(params, "competition"),
        team_id=id_param(params, "team"),
        day=day_param(params, "date"),
    )
    limit = int_param_or(params, "limit", low=1, high=200, default=50)
    after = decode_cursor(params["cursor"]) if "cursor" in params else None

    async def load() -> bytes:
        async with edge.db() as conn:
            rows, next_key = await list_matches(conn, flt, limit=limit, after=after)
        cursor = encode_cursor(*next_key) if next_key else None
        return orjson.dumps({"data": rows, "nextCursor": cursor})

    return load


async def get_match_route(request: Request, match_id: int) -> HTTPResponse:
    entry = await state(request).caches.match(_match_id(match_id))
    return cached_json(request, entry.body, entry.etag)


async def list_commentary_route(request: Request, match_id: int) -> HTTPResponse:
    match_id = _match_id(match_id)
    key = (match_id, "commentary", request.query_string)
    edge = state(request)
    entry = edge.caches.cached_subpage(key)  # served: no query to validate, no loader
    if entry is None:
        entry = await edge.caches.subpage(key, _commentary_loader(request, edge, match_id))
    return cached_json(request, entry.body, entry.etag)


def _commentary_loader(request: Request, edge: EdgeState, match_id: int) -> SubPageLoader:
    """Validate the commentary query (400s here) and return what reads its page."""
    params = query_params(request, COMMENTARY_PARAMS)
    limit = int_param_or(params, "limit", low=1, high=200, default=50)
    before = id_param(params, "before")

    async def load() -> tuple[int, bytes]:
        async with edge.db() as conn:
            seq = await match_seq(conn, match_id)  # first: the label never runs ahead
            events = await list_events(conn, match_id, limit=limit + 1, before=before)
        more = len(events) > limit
        events = events[:limit]
        next_before = events[-1]["id"] if more and events else None
        return seq, orjson.dumps({"data": events, "nextBefore": next_before})

    return load


async def list_changes_route(request: Request, match_id: int) -> HTTPResponse:
    match_id = _match_id(match_id)
    key = (match_id, "changes", request.query_string)
    edge = state(request)
    entry = edge.caches.cached_subpage(key)  # served: no query to validate, no loader
    if entry is None:
        entry = await edge.caches.subpage(key, _changes_loader(request, edge, match_id))
    return cached_json(request, entry.body, entry.etag)


def _changes_loader(request: Request, edge: EdgeState, match_id: int) -> SubPageLoader:
    """Validate the changes query (400s here) and return what reads its page."""
    params = query_params(request, CHANGES_PARAMS)
    since = int_param_or(params, "since", low=0, high=MAX_ID, default=0)
    limit = int_param_or(params, "limit", low=1, high=1000, default=100)

    async def load() -> tuple[int, bytes]:
        async with edge.db() as conn:
            seq = await match_seq(conn, match_id)
            if since < seq:
                oldest = await oldest_kept_seq(conn, match_id)
                if oldest is None or oldest > since + 1:
                    raise Gone(
                        f"changes after seq {since} are no longer kept; "
                        f"read /api/matches/{match_id} for a fresh snapshot",
                        code="changes_expired",
                        details={"oldestKept": oldest, "seq": seq},
                    )
            changes = await changes_since(conn, match_id, since, limit=limit + 1)
        more = len(changes) > limit
        changes = changes[:limit]
        # each change as the bytes the relay published, never decoded and re-encoded
        body = orjson.dumps(
            {
                "matchId": match_id,
                "data": change_codec.fragments(changes),
                "nextSince": changes[-1].seq if more else None,
            }
        )
        return seq, body

    return load


# -- writes -----------------------------------------------------------------------------


async def _team(conn: Conn, ref: str | int, sport: str, field: str) -> int:
    if isinstance(ref, int):
        try:
            await require(conn, "teams", ref)
        except NotFound:
            raise ValidationFailed(
                f"{field}: no team has id {ref}; give an existing id or a name",
                details={"errors": [{"field": field, "message": f"no team has id {ref}"}]},
            ) from None
        return ref
    try:
        return await get_or_create_team(conn, ref, sport=sport)
    except Conflict as exc:
        raise ConflictError(
            f"{field}: {exc}", code="ambiguous_name", details={"field": field}
        ) from exc


async def _competition(conn: Conn, ref: str | int, sport: str) -> int:
    if isinstance(ref, int):
        try:
            await require(conn, "competitions", ref)
        except NotFound:
            raise ValidationFailed(
                f"competition: no competition has id {ref}; give an existing id or a name",
                details={"errors": [{"field": "competition", "message": f"no id {ref}"}]},
            ) from None
        return ref
    try:
        return await get_or_create_competition(conn, ref, sport=sport)
    except Conflict as exc:
        raise ConflictError(
            f"competition: {exc}", code="ambiguous_name", details={"field": "competition"}
        ) from exc


async def create_match_route(request: Request) -> HTTPResponse:
    await require_api_key(request)
    body = parse(NewMatchBody, json_body(request))
    edge = state(request)
    async with edge.db() as conn, conn.transaction():
        # one transaction: a refused match leaves no team or competition behind
        home_id = await _team(conn, body.home_team, body.sport, "homeTeam")
        away_id = await _team(conn, body.away_team, body.sport, "awayTeam")
        comp_id = (
            await _competition(conn, body.competition, body.sport)
            if body.competition is not None
            else None
        )
        match = await create_match(
            conn,
            NewMatch(
                home_team_id=home_id,
                away_team_id=away_id,
                start_time=body.start_time,
                end_time=body.end_time,
                sport=body.sport,
                competition_id=comp_id,
            ),
        )
        if body.home_score or body.away_score:  # the initial score: the match's first change
            await apply_change(
                conn,
                match["id"],
                MatchPatch(
                    source="api", home_score=body.home_score or 0, away_score=body.away_score or 0
                ),
            )
            match = await get_match(conn, match["id"])
    edge.caches.reference_written()  # a new competition or team shows here at once
    return created_json({"data": match}, f"/api/matches/{match['id']}")


def register(app: EdgeApp) -> None:
    add_route(
        app, list_matches_route, "/api/matches", ["GET"], name="matches.list", query=LIST_PARAMS
    )
    add_route(app, create_match_route, "/api/matches", ["POST"], name="matches.create")
    add_route(app, get_match_route, "/api/matches/<match_id:int>", ["GET"], name="matches.get")
    commentary = "/api/matches/<match_id:int>/commentary"
    add_route(
        app,
        list_commentary_route,
        commentary,
        ["GET"],
        name="commentary.list",
        query=COMMENTARY_PARAMS,
    )
    changes = "/api/matches/<match_id:int>/changes"
    add_route(app, list_changes_route, changes, ["GET"], name="changes.list", query=CHANGES_PARAMS)
    routes_scoring.register(app)  # the scorer's writes: commentary, PATCH, override
