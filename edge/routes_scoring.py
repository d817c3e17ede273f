"""Keeping score over REST: add commentary, update a match, clear its override.

``POST /api/matches/{id}/commentary`` takes our body and the original Live
Score API's (free-text ``eventType`` mapped by ``livescore.event_kinds``,
``period`` numbers, ``sequence``, ``tags``, ``team`` by name); on a match no
feed covers, a goal moves the score in the same change and ``retracts`` takes
one back. ``PATCH /api/matches/{id}`` sets score, status and clock, audited
with the API key's name (an override on a match a feed covers);
``DELETE /api/matches/{id}/override`` unpins. The rules are in
``pipeline.scoring`` (pure) and the writes in ``pipeline.scorer``; this module
checks bodies, resolves the team and turns refusals into API errors.
"""

from __future__ import annotations

from typing import Any

import orjson
from sanic import HTTPResponse, Request

from edge.auth import require_api_key
from edge.errors import ConflictError, NotFoundError
from edge.instrument import add_route
from edge.requests import MatchUpdateBody, NewEventBody, invalid, parse
from edge.responses import JSON, created_json
from edge.state import EdgeApp, EdgeState, state
from edge.validation import MAX_ID, json_body, query_params
from livescore.event_kinds import event_kind
from livescore.model import MatchStatus, NewEvent, Side
from pipeline import scorer
from pipeline.scoring import ScoreUpdate, ScoringRefused
from pipeline.status_machine import IllegalTransition
from store.db import Conn
from store.matches import get_match
from store.reference import alias_keys, find_ids
from store.writes import Change

CLEAR_PARAMS = ("reason",)


def _answer(match: dict[str, Any]) -> HTTPResponse:
    """A write's answer: the match as it now is (not to be cached)."""
    return HTTPResponse(
        orjson.dumps({"data": match}), headers={"Cache-Control": "no-store"}, content_type=JSON
    )


def _match_id(raw: int) -> int:
    if not 1 <= raw <= MAX_ID:
        raise NotFoundError(f"match {raw} not found", details={"kind": "match"})
    return raw


async def _written(edge: EdgeState, match_id: int, changes: list[Change]) -> None:
    """Our own write: this worker's cache shows it before we answer."""
    if changes:
        await edge.caches.written(match_id, changes[-1].seq)


async def _event_side(conn: Conn, team: str | int | None, match: dict[str, Any]) -> Side | None:
    """The side ``team`` names in ``match``: home/away, a team id, or a name either
    team is known by (any alias, case-insensitive); 422 if it names neither."""
    if team is None:
        return None
    home, away = match["homeTeam"], match["awayTeam"]
    if team == "home" or team == home["id"]:
        return "home"
    if team == "away" or team == away["id"]:
        return "away"
    if isinstance(team, str):
        ids = set(await find_ids(conn, "team", match["sport"], alias_keys(team)))
        sides: list[Side] = []
        if home["id"] in ids:
            sides.append("home")
        if away["id"] in ids:
            sides.append("away")
        if len(sides) == 1:
            return sides[0]
        if len(sides) == 2:
            message = f"{team!r} names both teams of match {match['id']}; use home or away"
            raise invalid([{"field": "team", "message": message}])
    message = (
        f"team {team!r} does not play in match {match['id']} "
        f"({home['name']} v {away['name']}): give home, away, a team id or name"
    )
    raise invalid([{"field": "team", "message": message}])


def _refused(exc: ScoringRefused) -> Exception:
    return invalid([{"field": exc.field, "message": str(exc)}])


async def add_commentary_route(request: Request, match_id: int) -> HTTPResponse:
    match_id = _match_id(match_id)
    await require_api_key(request)
    body = parse(NewEventBody, json_body(request))
    kind, original = event_kind(body.event_type)
    edge = state(request)
    async with edge.db() as conn:
        match = await get_match(conn, match_id)
        event = NewEvent(
            type=kind,
            minute=body.minute,
            added_time=body.added_time,
            side=await _event_side(conn, body.team, match),
            actor=body.actor,
            message=body.message,
            metadata=body.metadata or {},
            source="api",
            period=body.period,
            sequence=body.sequence,
            tags=body.tags or (),
            original_type=original,
        )
        try:
            changes = await scorer.add_event(conn, match_id, event, retracts=body.retracts)
        except ScoringRefused as exc:
            raise _refused(exc) from None
    await _written(edge, match_id, changes)
    created = next(c.payload for c in changes if c.type == "commentary:new")
    return created_json({"data": created}, f"/api/matches/{match_id}/commentary")


async def update_match_route(request: Request, match_id: int) -> HTTPResponse:
    match_id = _match_id(match_id)
    key = await require_api_key(request)
    body = parse(MatchUpdateBody, json_body(request))
    if not body.given():
        raise invalid(
            [
                {
                    "field": "body",
                    "message": "give at least one of homeScore, awayScore, status, "
                    "minute, addedTime, period",
                }
            ]
        )
    update = ScoreUpdate(
        home_score=body.home_score,
        away_score=body.away_score,
        status=MatchStatus(body.status) if body.status is not None else None,
        minute=body.minute,
        added_time=body.added_time,
        period=body.period,
    )
    edge = state(request)
    async with edge.db() as conn:
        try:
            changes = await scorer.update_match(
                conn, match_id, update, who=key.name, reason=body.reason
            )
        except IllegalTransition as exc:
            raise ConflictError(
                str(exc),
                code="illegal_transition",
                details={"from": exc.old.value, "to": exc.new.value},
            ) from None
        match = await get_match(conn, match_id)
    await _written(edge, match_id, changes)
    return _answer(match)


async def clear_override_route(request: Request, match_id: int) -> HTTPResponse:
    match_id = _match_id(match_id)
    key = await require_api_key(request)
    reason = query_params(request, CLEAR_PARAMS).get("reason") or None
    edge = state(request)
    async with edge.db() as conn:
        changes = await scorer.clear_override(conn, match_id, who=key.name, reason=reason)
        match = await get_match(conn, match_id)
    await _written(edge, match_id, changes)
    return _answer(match)


def register(app: EdgeApp) -> None:
    one = "/api/matches/<match_id:int>"
    add_route(app, update_match_route, one, ["PATCH"], name="matches.update")
    add_route(
        app,
        clear_override_route,
        f"{one}/override",
        ["DELETE"],
        name="matches.override.clear",
        query=CLEAR_PARAMS,
    )
    commentary = f"{one}/commentary"
    add_route(app, add_commentary_route, commentary, ["POST"], name="commentary.add")
