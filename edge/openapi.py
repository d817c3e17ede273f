"""The OpenAPI 3.1 document served at /openapi.json.

Written by hand because the API is small and its contract (CONTRACT.md
section 4) comes first: every route, parameter, header, response and error
is spelled out here. The request bodies are the exception: their schemas
(``NewMatch``, ``NewEvent``) are generated from the declarations in
``edge/requests.py`` that the routes validate with, so no limit or pattern
of a body is written twice. tests/edge/test_openapi.py drives schemathesis
against a live node with this document (code looser than it fails), and
tests/edge/test_request_models.py checks that the generated schemas and the
validator agree at every declared bound (code stricter than it fails too).
"""

from __future__ import annotations

from functools import cache
from importlib import metadata
from typing import Any

from edge.requests import ID as IDS
from edge.requests import MatchUpdateBody, NewEventBody, NewMatchBody, json_schema
from edge.validation import MAX_ID
from livescore.model import EventType, MatchStatus, Period

STATUSES = [s.value for s in MatchStatus]
EVENT_TYPES = [e.value for e in EventType]
CHANGE_TYPES = [
    "score:update",
    "commentary:new",
    "commentary:update",
    "match:status",
    "match:update",
]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"oneOf": [schema, {"type": "null"}]}


def _int(low: int = 0, high: int | None = None, *, null: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": ["integer", "null"] if null else "integer", "minimum": low}
    if high is not None:
        schema["maximum"] = high
    return schema


def _str(*, null: bool = False, **extra: Any) -> dict[str, Any]:
    return {"type": ["string", "null"] if null else "string", **extra}


def _object(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": props,
        "required": list(props) if required is None else required,
        "additionalProperties": False,
    }


ID = IDS.schema()
SCORE_LINE = _object({"home": _int(null=True), "away": _int(null=True)})

SCHEMAS: dict[str, Any] = {
    "ErrorBody": _object(
        {
            "code": {"type": "string", "description": "machine-readable, snake_case"},
            "message": {"type": "string", "description": "what went wrong, what to do"},
            "details": {"type": "object"},
        }
    ),
    "Error": _object({"error": _ref("ErrorBody")}),
    "TeamRef": _object(
        {
            "id": ID,
            "name": {"type": "string"},
            "shortName": _str(null=True),
            "tla": _str(null=True),
        }
    ),
    "CompetitionRef": _object({"id": ID, "name": {"type": "string"}}),
    "ScoreLine": SCORE_LINE,
    "Breakdown": _object(
        {
            "halfTime": _nullable(_ref("ScoreLine")),
            "regularTime": _nullable(_ref("ScoreLine")),
            "extraTime": _nullable(_ref("ScoreLine")),
            "penalties": _nullable(_ref("ScoreLine")),
        }
    ),
    "Clock": _object(
        {
            "minute": _int(null=True),
            "addedTime": _int(null=True),
            "period": {"enum": [*(p.value for p in Period), None]},
            "running": {
                "type": "boolean",
                "description": "the clock runs (live or extra time, in a period): tick it",
            },
            "periodStartedAt": {
                **_str(null=True, format="date-time"),
                "description": "when this period's clock read periodStartMinute; null: stopped. "
                "Shown minute = periodStartMinute + whole minutes since, beyond "
                "periodEndMinute as added time, never less than minute + addedTime",
            },
            "periodStartMinute": _int(null=True),
            "periodEndMinute": _int(null=True),
        }
    ),
    "Override": _object(
        {
            "who": {"type": "string"},
            "reason": {"type": "string"},
            "since": {"type": "string", "format": "date-time"},
            "status": {"enum": [*STATUSES, None]},
            "homeScore": _int(null=True),
            "awayScore": _int(null=True),
        }
    ),
    "Match": _object(
        {
            "id": ID,
            "sport": {"type": "string"},
            "competition": _nullable(_ref("CompetitionRef")),
            "homeTeam": _ref("TeamRef"),
            "awayTeam": _ref("TeamRef"),
            "startTime": {"type": "string", "format": "date-time"},
            "endTime": _str(null=True, format="date-time"),
            "status": {"enum": STATUSES},
            "homeScore": _int(),
            "awayScore": _int(),
            "breakdown": _ref("Breakdown"),
            "clock": _ref("Clock"),
            "stats": {"type": "object"},
            "seq": {**_int(), "description": "per-match change counter (see /changes)"},
            "stale": {"type": "boolean", "description": "no fresh provider data lately"},
            "updatedAt": {"type": "string", "format": "date-time"},
            "override": _nullable(_ref("Override")),
            "stage": {
                **_str(null=True),
                "description": "the competition phase as the most trusted feed that says "
                "it names it (group_stage, regular_season, last_16, ...); null: unknown",
            },
            "group": {
                **_str(null=True),
                "description": 'the group ("Group B"); null: unknown or in no group. '
                "Standings make one table per group",
            },
        }
    ),
    # single objects are wrapped as {"data": ...} like lists (the original API's shape)
    "MatchDocument": _object({"data": _ref("Match")}),
    "EventDocument": _object({"data": _ref("Event")}),
    "MatchPage": _object(
        {
            "data": {"type": "array", "items": _ref("Match")},
            "nextCursor": _str(null=True, description="pass as ?cursor= for the next page"),
        }
    ),
    "Event": _object(
        {
            "id": ID,
            "matchId": ID,
            "seq": _int(1),
            "minute": _int(null=True),
            "addedTime": _int(null=True),
            "type": {"enum": EVENT_TYPES},
            "side": {"enum": ["home", "away", None]},
            "team": _nullable(_object({"id": ID, "name": _str(null=True)})),
            "actor": _str(null=True),
            "message": _str(null=True),
            "metadata": {"type": "object"},
            "retracted": {"type": "boolean", "description": "cancelled by VAR; kept in history"},
            "source": _str(null=True),
            "createdAt": {"type": "string", "format": "date-time"},
            "period": {
                "enum": [*(p.value for p in Period), None],
                "description": "the period it happened in (a number sent is mapped: 1 1H, "
                "2 2H, 3 and 4 ET, 5 PEN)",
            },
            "sequence": {**_int(null=True), "description": "the client's own order, as sent"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "originalType": _str(
                null=True,
                description="the kind as sent when it is not one of ours (corner, card, ...)",
            ),
        }
    ),
    "EventPage": _object(
        {
            "data": {"type": "array", "items": _ref("Event")},
            "nextBefore": _nullable(ID),
        }
    ),
    "ChangeMessage": _object(
        {
            "type": {"enum": CHANGE_TYPES},
            "matchId": ID,
            "seq": _int(1),
            "data": {"type": "object"},
            "ts": _str(null=True, format="date-time"),
        }
    ),
    "ChangePage": _object(
        {
            "matchId": ID,
            "data": {"type": "array", "items": _ref("ChangeMessage")},
            "nextSince": _int(1, null=True),
        }
    ),
    "Competition": _object(
        {
            "id": ID,
            "sport": {"type": "string"},
            "name": {"type": "string"},
            "country": _str(null=True),
        }
    ),
    "Team": _object(
        {
            "id": ID,
            "sport": {"type": "string"},
            "name": {"type": "string"},
            "shortName": _str(null=True),
            "tla": _str(null=True),
        }
    ),
    "Health": {
        "type": "object",
        "properties": {
            "status": {"enum": ["ok", "degraded", "unavailable"]},
            "node": {"type": "string"},
            "time": {"type": "string", "format": "date-time"},
            "checkedSecondsAgo": {
                "type": ["number", "null"],
                "description": "age of the background reading answered from (null: none yet)",
            },
            "problems": {"type": "array", "items": {"type": "string"}},
            "checks": {
                "type": "object",
                "properties": {
                    name: {
                        "type": "object",
                        "properties": {"ok": {"type": "boolean"}},
                        "required": ["ok"],
                    }
                    for name in ("postgres", "redis", "queue", "bus")
                },
                "required": ["postgres", "redis", "queue", "bus"],
            },
            "staleMatches": _int(null=True),
            "error": _ref("ErrorBody"),
        },
        "required": ["status", "node", "time", "checks", "staleMatches"],
        "additionalProperties": False,
    },
    # request bodies: generated from their declarations (edge/requests.py)
    "NewMatch": json_schema(NewMatchBody),
    "NewEvent": json_schema(NewEventBody),
    "MatchUpdate": json_schema(MatchUpdateBody),
}

_HEADERS = {
    "ETag": {
        "description": "strong validator of the body",
        "schema": {"type": "string"},
        "required": True,
    },
    "Cache-Control": {
        "description": "no-cache: revalidate with If-None-Match",
        "schema": {"type": "string"},
    },
}
_RETRY = {"Retry-After": {"schema": {"type": "string"}, "required": True}}
_JSON_ERROR = {"application/json": {"schema": _ref("Error")}}


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": _JSON_ERROR}
    if headers:
        response["headers"] = headers
    return response


ERRORS: dict[str, dict[str, Any]] = {
    "400": _error("malformed query, JSON or cursor; an unknown or repeated query parameter"),
    "401": _error(
        "no usable Authorization: Bearer header",
        {"WWW-Authenticate": {"schema": {"type": "string"}, "required": True}},
    ),
    "403": _error("unknown or revoked API key"),
    "404": _error("no such match (or route)"),
    "405": _error("method not allowed on this path"),
    "409": _error(
        "a name matches several teams/competitions (use an id); or a status move the "
        "state machine refuses (illegal_transition)"
    ),
    "410": _error("the asked changes are no longer kept; read the match instead"),
    "413": _error("body larger than 64 KiB"),
    "415": _error("body is not application/json"),
    "422": _error("body breaks the rules; details.errors lists each field"),
    "429": _error("rate limit reached (per client address and per API key)", _RETRY),
    "431": _error("request line and headers over 8 KiB together"),
    "500": _error("unexpected failure (logged); the message is generic"),
    "503": _error("PostgreSQL unreachable", _RETRY),
}


def _read(schema: str, description: str) -> dict[str, Any]:
    return {
        "200": {
            "description": description,
            "headers": _HEADERS,
            "content": {"application/json": {"schema": _ref(schema)}},
        },
        "304": {"description": "not modified (If-None-Match matched)", "headers": _HEADERS},
    }


def _errors(*codes: str) -> dict[str, Any]:
    return {code: ERRORS[code] for code in (*codes, "429", "431", "500", "503")}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


MATCH_ID = {"name": "id", "in": "path", "required": True, "schema": ID, "description": "match id"}
STATUS_LIST = "^(" + "|".join(STATUSES) + ")(,(" + "|".join(STATUSES) + "))*$"
AUTH: list[dict[str, list[str]]] = [{"bearerAuth": []}]


def _paths() -> dict[str, Any]:
    return {
        "/health": {
            "get": {
                "operationId": "health",
                "summary": "Node health from a reading refreshed every second: PostgreSQL, "
                "Redis, queue depth, relay, workers, feeds, stale matches, node id",
                "tags": ["operations"],
                "responses": {
                    "200": {
                        "description": "all dependencies up",
                        "content": {"application/json": {"schema": _ref("Health")}},
                    },
                    "503": {
                        "description": "a dependency is down",
                        "content": {"application/json": {"schema": _ref("Health")}},
                    },
                    "400": ERRORS["400"],
                    "431": ERRORS["431"],
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics (text exposition format 0.0.4)",
                "tags": ["operations"],
                "responses": {
                    "200": {
                        "description": "metrics",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "400": ERRORS["400"],
                    "431": ERRORS["431"],
                    "500": ERRORS["500"],
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "tags": ["operations"],
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    **_errors("400"),
                },
            }
        },
        "/sse": {
            "get": {
                "operationId": "serverSentEvents",
                "summary": "Changes as Server-Sent Events (text/event-stream; see README, /sse)",
                "description": (
                    "matchId and/or competitionId (comma-separated ids); resume with the "
                    "Last-Event-ID header (matchId:seq[,...], what EventSource sends) or "
                    "since (matchId:seq[,...], or a seq with one matchId). Each event: id "
                    "(the stream's position), event (the change type), data (the JSON a "
                    "WebSocket client gets). Refusals come before the stream, as HTTP "
                    "errors: 400 for a bad query or position, 404 when nothing named "
                    "exists, 429 from the per-address admission shared with /ws, 503 while "
                    "the node starts or PostgreSQL does not answer."
                ),
                "tags": ["websocket"],
                "parameters": [
                    {"name": "matchId", "in": "query", "schema": {"type": "string"}},
                    {"name": "competitionId", "in": "query", "schema": {"type": "string"}},
                    {"name": "since", "in": "query", "schema": {"type": "string"}},
                    {"name": "Last-Event-ID", "in": "header", "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": {
                        "description": "the event stream (open until the client leaves)",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    **_errors("400", "404"),
                },
            }
        },
        "/ws": {
            "get": {
                "operationId": "webSocket",
                "summary": "The WebSocket endpoint (JSON frames; see README, WebSocket /ws)",
                "description": (
                    "Send a WebSocket handshake (Upgrade: websocket). Refusals come before "
                    "the upgrade, as HTTP errors: 403 for an Origin not allowed, 400 for any "
                    "query parameter, 429 rate_limited beyond the per-address upgrade budget "
                    "(LIVESCORE_WS_UPGRADE_RATE, shared by every node) or "
                    "too_many_connections at LIVESCORE_WS_MAX_PER_ADDRESS open sockets (per "
                    "edge worker), 503 while the node starts; 429 and 503 carry Retry-After."
                ),
                "tags": ["websocket"],
                "responses": {
                    "101": {"description": "switching protocols: the WebSocket is open"},
                    "403": _error("the Origin is not in LIVESCORE_WS_ORIGINS"),
                    "426": _error(
                        "not a WebSocket handshake",
                        {"Upgrade": {"schema": {"type": "string"}, "required": True}},
                    ),
                    "429": _error(
                        "upgrade budget or open-socket cap of this address reached", _RETRY
                    ),
                    "503": _error("the node is still starting", _RETRY),
                    **{code: ERRORS[code] for code in ("400", "431", "500")},
                },
            }
        },
        "/api/matches": {
            "get": {
                "operationId": "listMatches",
                "summary": "Matches by (startTime, id), filtered, with cursor pagination",
                "description": (
                    "Keyset pagination: rows inserted while paging never make a page skip "
                    "or repeat a row."
                ),
                "tags": ["matches"],
                "parameters": [
                    _query(
                        "status",
                        {"type": "string", "pattern": STATUS_LIST},
                        "comma-separated statuses",
                    ),
                    _query("competition", ID, "competition id"),
                    _query("date", {"type": "string", "format": "date"}, "UTC day, YYYY-MM-DD"),
                    _query("team", ID, "team id (home or away)"),
                    _query("limit", {**_int(1, 200), "default": 50}, "page size"),
                    _query(
                        "cursor",
                        {"type": "string", "pattern": "^[A-Za-z0-9_-]+$", "maxLength": 200},
                        "nextCursor of the previous page",
                    ),
                ],
                "responses": {**_read("MatchPage", "a page of matches"), **_errors("400")},
            },
            "post": {
                "operationId": "createMatch",
                "summary": "Create a match (teams and competition by name or id)",
                "tags": ["matches"],
                "security": AUTH,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("NewMatch")}},
                },
                "responses": {
                    "201": {
                        "description": "created",
                        "headers": {"Location": {"schema": {"type": "string"}, "required": True}},
                        "content": {"application/json": {"schema": _ref("MatchDocument")}},
                    },
                    **_errors("400", "401", "403", "409", "413", "415", "422"),
                },
            },
        },
        "/api/matches/{id}": {
            "get": {
                "operationId": "getMatch",
                "summary": "One match: score, clock, breakdown, status, seq",
                "tags": ["matches"],
                "parameters": [MATCH_ID],
                "responses": {**_read("MatchDocument", "the match"), **_errors("404")},
            },
            "patch": {
                "operationId": "updateMatch",
                "summary": "Keep score: set score, status and clock (audited with the key's name)",
                "description": (
                    "Through the one write path: numbered and published like any change, "
                    "audited (who = the API key's name). On a match no feed covers the values "
                    "are set as they are; on a match a feed covers (or one already pinned) "
                    "the update is an override that pins the match until DELETE "
                    "/api/matches/{id}/override. A status move must be legal (409 "
                    "illegal_transition otherwise); a status without a clock moves the "
                    "clock with it (live from scheduled: 0' 1H, from halftime: 45' 2H, ...)."
                ),
                "tags": ["matches"],
                "security": AUTH,
                "parameters": [MATCH_ID],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("MatchUpdate")}},
                },
                "responses": {
                    "200": {
                        "description": "the match after the update",
                        "content": {"application/json": {"schema": _ref("MatchDocument")}},
                    },
                    **_errors("400", "401", "403", "404", "409", "413", "415", "422"),
                },
            },
        },
        "/api/matches/{id}/override": {
            "delete": {
                "operationId": "clearOverride",
                "summary": "Unpin a match: the feeds take over again (audited)",
                "tags": ["matches"],
                "security": AUTH,
                "parameters": [
                    MATCH_ID,
                    _query(
                        "reason",
                        {"type": "string", "maxLength": 500},
                        "why (kept in the audit trail)",
                    ),
                ],
                "responses": {
                    "200": {
                        "description": "the match, unpinned (unchanged if it was not pinned)",
                        "content": {"application/json": {"schema": _ref("MatchDocument")}},
                    },
                    **_errors("400", "401", "403", "404", "422"),
                },
            }
        },
        "/api/matches/{id}/commentary": {
            "get": {
                "operationId": "listCommentary",
                "summary": "A match's events, newest first",
                "tags": ["commentary"],
                "parameters": [
                    MATCH_ID,
                    _query("limit", {**_int(1, 200), "default": 50}, "page size"),
                    _query("before", ID, "only events with an id below this (nextBefore)"),
                ],
                "responses": {
                    **_read("EventPage", "events, newest first"),
                    **_errors("400", "404"),
                },
            },
            "post": {
                "operationId": "addCommentary",
                "summary": "Add an event (numbered and published like any change)",
                "tags": ["commentary"],
                "security": AUTH,
                "parameters": [MATCH_ID],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("NewEvent")}},
                },
                "responses": {
                    "201": {
                        "description": "the event as stored",
                        "headers": {"Location": {"schema": {"type": "string"}, "required": True}},
                        "content": {"application/json": {"schema": _ref("EventDocument")}},
                    },
                    **_errors("400", "401", "403", "404", "413", "415", "422"),
                },
            },
        },
        "/api/matches/{id}/changes": {
            "get": {
                "operationId": "listChanges",
                "summary": "The ordered change log after a seq (what a WebSocket resume replays)",
                "tags": ["matches"],
                "parameters": [
                    MATCH_ID,
                    _query("since", {**_int(0, MAX_ID), "default": 0}, "last seq the client has"),
                    _query("limit", {**_int(1, 1000), "default": 100}, "page size"),
                ],
                "responses": {
                    **_read("ChangePage", "changes in seq order"),
                    **_errors("400", "404", "410"),
                },
            }
        },
        "/api/competitions": {
            "get": {
                "operationId": "listCompetitions",
                "summary": "Every competition",
                "tags": ["reference"],
                "responses": {**_read("CompetitionList", "competitions"), **_errors("400")},
            }
        },
        "/api/teams": {
            "get": {
                "operationId": "listTeams",
                "summary": "Teams, optionally those playing in one competition",
                "tags": ["reference"],
                "parameters": [_query("competition", ID, "competition id")],
                "responses": {**_read("TeamList", "teams"), **_errors("400")},
            }
        },
        "/api/competitions/{id}/standings": {
            "get": {
                "operationId": "getStandings",
                "summary": "The competition's league table(s), computed from our results",
                "description": (
                    "One table per group (one when no match has a group; knockout-stage "
                    "matches count in none), ordered by points, "
                    "goal difference, goals for, name, then team id. Finished matches count; "
                    "with live=true (default) matches in play count as they stand and their "
                    "teams' rows are provisional. Pushed on /ws and /sse as standings:update "
                    "to competition subscribers."
                ),
                "tags": ["reference"],
                "parameters": [
                    {
                        "name": "id",
                        "in": "path",
                        "required": True,
                        "schema": ID,
                        "description": "competition id",
                    },
                    _query(
                        "season",
                        _int(1900, 2200),
                        "the year the season starts in (default: the current one)",
                    ),
                    _query(
                        "live",
                        {"type": "string", "enum": ["true", "false"]},
                        "false: finished matches only",
                    ),
                ],
                "responses": {
                    **_read("StandingsDocument", "the tables"),
                    **_errors("400", "404"),
                },
            }
        },
    }


@cache
def document() -> dict[str, Any]:
    try:
        version = metadata.version("livescore")
    except metadata.PackageNotFoundError:
        version = "0"
    schemas = {
        **SCHEMAS,
        "CompetitionList": _object({"data": {"type": "array", "items": _ref("Competition")}}),
        "TeamList": _object({"data": {"type": "array", "items": _ref("Team")}}),
        "StandingsRow": _object(
            {
                "position": _int(1),
                "team": _object({"id": ID, "name": {"type": "string"}}),
                "played": _int(),
                "won": _int(),
                "drawn": _int(),
                "lost": _int(),
                "goalsFor": _int(),
                "goalsAgainst": _int(),
                "goalDifference": {"type": "integer"},
                "points": {"type": "integer"},
                "form": _str(pattern="^[WDL]{0,5}$", description="last five, oldest first"),
                "provisional": {
                    "type": "boolean",
                    "description": "counts a match still in play, as it stands",
                },
            }
        ),
        "Standings": _object(
            {
                "competition": _object({"id": ID, "name": {"type": "string"}}),
                "season": _int(),
                "seasons": {"type": "array", "items": _int()},
                "live": {"type": "boolean"},
                "seq": _int(),
                "rules": _object(
                    {
                        "win": {"type": "integer"},
                        "draw": {"type": "integer"},
                        "loss": {"type": "integer"},
                    }
                ),
                "provisional": {"type": "boolean"},
                "tables": {
                    "type": "array",
                    "items": _object(
                        {
                            "group": _str(null=True),
                            "rows": {"type": "array", "items": _ref("StandingsRow")},
                        }
                    ),
                },
            }
        ),
        "StandingsDocument": _object({"data": _ref("Standings")}),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "LiveScore API",
            "version": version,
            "description": (
                "Live sports scores. Errors are always "
                '{"error": {"code", "message", "details"}}. Reads carry ETag and answer 304 '
                "to If-None-Match; Cache-Control is no-cache. Writes need "
                "Authorization: Bearer <api key>. Rate limits are per client address and "
                "per API key, shared by every node (429 with Retry-After). Every GET route "
                "answers HEAD (same status and headers, no body). Every route refuses a "
                "query parameter it does not list, or one given twice (400 "
                "invalid_parameter). Request line and headers over 8 KiB: 431. CORS: "
                "OPTIONS on any path is the preflight (204; origins: LIVESCORE_CORS_ORIGINS)."
            ),
        },
        "paths": _paths(),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "lsk_... key"}
            },
        },
    }
