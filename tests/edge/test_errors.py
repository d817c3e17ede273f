"""The one error envelope, on every error path; validation of every input.

``test_every_error_is_the_envelope`` runs a table of bad requests against a
real node and checks each answer: the status, the error code, and the exact
shape ``{"error": {"code", "message", "details"}}``. Bad input is never a
500 and never leaves half a write behind.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest

from edge.errors import handle_exception, to_api_error
from livescore.errors import Conflict, InvalidChange, NotFound
from livescore.limits import MAX_JSON_DEPTH
from livescore.model import MatchStatus
from store.apikeys import create_key, revoke_key
from store.db import Conn
from store.reference import create
from tests.edge.conftest import EdgeNode, EdgeServers, auth
from tests.factories import Factory

pytestmark = pytest.mark.slow


def assert_envelope(response: httpx.Response, status: int, code: str | None = None) -> None:
    """The one error shape; the test every error path goes through."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert isinstance(error["code"], str) and error["code"].islower()
    assert isinstance(error["message"], str) and len(error["message"]) > 10
    assert isinstance(error["details"], dict)
    if code is not None:
        assert error["code"] == code, error
    assert "Traceback" not in response.text


@dataclass
class World:
    """Rows the bad requests refer to."""

    key: str
    revoked_key: str
    match: dict[str, Any]
    old_match: dict[str, Any]
    twin_name: str
    other_team: int


@dataclass
class Bad:
    name: str
    method: str
    path: str | Callable[[World], str]
    status: int
    code: str
    body: Any = None
    raw: bytes | None = None
    headers: dict[str, str] | Callable[[World], dict[str, str]] = field(default_factory=dict)
    authed: bool = False  # send the world's valid key


MATCH: Callable[[World], str] = lambda w: f"/api/matches/{w.match['id']}"  # noqa: E731
COMMENTARY: Callable[[World], str] = lambda w: f"/api/matches/{w.match['id']}/commentary"  # noqa: E731
GOOD_MATCH = {"sport": "football", "homeTeam": "Ghost A", "awayTeam": "Ghost B"}
START = "2030-01-01T12:00:00Z"
EVENT = {"minute": 10, "type": "text", "message": "hello"}


def too_deep() -> dict[str, Any]:
    """An object one level deeper than metadata may be."""
    value: dict[str, Any] = {}
    for _ in range(MAX_JSON_DEPTH):
        value = {"a": value}
    return value


TABLE = [
    # routing
    Bad("unknown route", "GET", "/api/nothing", 404, "not_found"),
    Bad("unknown match", "GET", "/api/matches/987654321", 404, "not_found"),
    Bad("id beyond bigint", "GET", "/api/matches/99999999999999999999", 404, "not_found"),
    Bad("negative id", "GET", "/api/matches/-3", 404, "not_found"),
    Bad("id not a number", "GET", "/api/matches/abc", 404, "not_found"),
    Bad("unknown match commentary", "GET", "/api/matches/987654321/commentary", 404, "not_found"),
    Bad("wrong method", "DELETE", "/api/matches", 405, "method_not_allowed"),
    Bad("wrong method on match", "PUT", MATCH, 405, "method_not_allowed"),
    # query strings
    Bad("limit zero", "GET", "/api/matches?limit=0", 400, "invalid_parameter"),
    Bad("limit too big", "GET", "/api/matches?limit=201", 400, "invalid_parameter"),
    Bad("limit not a number", "GET", "/api/matches?limit=ten", 400, "invalid_parameter"),
    Bad("limit blank", "GET", "/api/matches?limit=", 400, "invalid_parameter"),
    Bad("unknown status", "GET", "/api/matches?status=live,playing", 400, "invalid_parameter"),
    Bad("bad date", "GET", "/api/matches?date=2030-02-30", 400, "invalid_parameter"),
    Bad("date with time", "GET", "/api/matches?date=2030-02-03T10:00", 400, "invalid_parameter"),
    Bad("competition id zero", "GET", "/api/matches?competition=0", 400, "invalid_parameter"),
    Bad("team not an id", "GET", "/api/matches?team=arsenal", 400, "invalid_parameter"),
    Bad("unknown parameter", "GET", "/api/matches?sort=desc", 400, "invalid_parameter"),
    Bad("repeated parameter", "GET", "/api/matches?limit=1&limit=2", 400, "invalid_parameter"),
    Bad("bad cursor", "GET", "/api/matches?cursor=abc", 400, "invalid_parameter"),
    Bad("bad since", "GET", lambda w: f"/api/matches/{w.match['id']}/changes?since=-1", 400,
        "invalid_parameter"),
    Bad("changes limit", "GET", lambda w: f"/api/matches/{w.match['id']}/changes?limit=1001",
        400, "invalid_parameter"),
    Bad("bad before", "GET", lambda w: f"{COMMENTARY(w)}?before=x", 400, "invalid_parameter"),
    Bad("teams bad competition", "GET", "/api/teams?competition=x", 400, "invalid_parameter"),
    Bad("competitions take nothing", "GET", "/api/competitions?x=1", 400, "invalid_parameter"),
    Bad("changes no longer kept", "GET", lambda w: f"/api/matches/{w.old_match['id']}/changes",
        410, "changes_expired"),
    # authentication
    Bad("no key", "POST", "/api/matches", 401, "missing_api_key", body=GOOD_MATCH),
    Bad("basic auth", "POST", "/api/matches", 401, "malformed_authorization",
        headers={"Authorization": "Basic dXNlcjpwdw=="}),
    Bad("bearer without key", "POST", COMMENTARY, 401, "malformed_authorization",
        headers={"Authorization": "Bearer"}),
    Bad("unknown key", "POST", "/api/matches", 403, "unknown_api_key",
        headers={"Authorization": "Bearer lsk_not-a-real-key"}),
    Bad("revoked key", "POST", COMMENTARY, 403, "revoked_api_key",
        headers=lambda w: auth(w.revoked_key)),
    # bodies
    Bad("too large", "POST", "/api/matches", 413, "payload_too_large", authed=True,
        raw=b'{"x": "' + b"a" * 70_000 + b'"}'),
    Bad("not json content type", "POST", "/api/matches", 415, "unsupported_media_type",
        authed=True, raw=b"sport=football", headers={"Content-Type": "text/plain"}),
    Bad("malformed json", "POST", "/api/matches", 400, "invalid_json", authed=True, raw=b"{no"),
    Bad("json not an object", "POST", COMMENTARY, 400, "invalid_json", authed=True, body=[1]),
    Bad("empty body", "POST", COMMENTARY, 400, "invalid_json", authed=True, raw=b""),
    Bad("missing fields", "POST", "/api/matches", 422, "validation_failed", authed=True,
        body={"sport": "football"}),
    Bad("unknown field", "POST", "/api/matches", 422, "validation_failed", authed=True,
        body={**GOOD_MATCH, "startTime": START, "venue": "Wembley"}),
    Bad("naive startTime", "POST", "/api/matches", 422, "validation_failed", authed=True,
        body={**GOOD_MATCH, "startTime": "2030-01-01T12:00:00"}),
    Bad("startTime not a time", "POST", "/api/matches", 422, "validation_failed", authed=True,
        body={**GOOD_MATCH, "startTime": "soon"}),
    Bad("startTime at year 1", "POST", "/api/matches", 422, "validation_failed", authed=True,
        body={**GOOD_MATCH, "startTime": "0001-01-01T00:00:01+02:01"}),
    Bad("startTime at year 9999", "POST", "/api/matches", 422, "validation_failed", authed=True,
        body={**GOOD_MATCH, "startTime": "9999-12-31T23:59:59-05:00"}),
    Bad("endTime before start", "POST", "/api/matches", 422, "validation_failed", authed=True,
        body={**GOOD_MATCH, "startTime": START, "endTime": "2030-01-01T11:00:00Z"}),
    Bad("same teams by name", "POST", "/api/matches", 422, "validation_failed", authed=True,
        body={**GOOD_MATCH, "awayTeam": "ghost a", "startTime": START}),
    Bad("bad sport", "POST", "/api/matches", 422, "validation_failed", authed=True,
        body={**GOOD_MATCH, "sport": "Foot Ball!", "startTime": START}),
    Bad("team id unknown", "POST", "/api/matches", 422, "validation_failed", authed=True,
        body={**GOOD_MATCH, "awayTeam": 987654321, "startTime": START}),
    Bad("team a boolean", "POST", "/api/matches", 422, "validation_failed", authed=True,
        body={**GOOD_MATCH, "homeTeam": True, "startTime": START}),
    Bad("team name with NUL", "POST", "/api/matches", 422, "validation_failed", authed=True,
        body={**GOOD_MATCH, "homeTeam": "Ghost\x00", "startTime": START}),
    Bad("blank team name", "POST", "/api/matches", 422, "validation_failed", authed=True,
        body={**GOOD_MATCH, "homeTeam": "   ", "startTime": START}),
    Bad("ambiguous team name", "POST", "/api/matches", 409, "ambiguous_name", authed=True,
        body=lambda w: {**GOOD_MATCH, "homeTeam": w.twin_name, "startTime": START}),
    Bad("minute out of range", "POST", COMMENTARY, 422, "validation_failed", authed=True,
        body={**EVENT, "minute": 201}),
    Bad("minute a string", "POST", COMMENTARY, 422, "validation_failed", authed=True,
        body={**EVENT, "minute": "10"}),
    Bad("minute a float", "POST", COMMENTARY, 422, "validation_failed", authed=True,
        body={**EVENT, "minute": 10.5}),
    Bad("event type not text", "POST", COMMENTARY, 422, "validation_failed", authed=True,
        body={**EVENT, "type": 5}),
    Bad("type and eventType", "POST", COMMENTARY, 422, "validation_failed", authed=True,
        body={**EVENT, "eventType": "goal"}),
    Bad("no message at all", "POST", COMMENTARY, 422, "validation_failed", authed=True,
        body={"minute": 1, "type": "goal"}),
    Bad("message too long", "POST", COMMENTARY, 422, "validation_failed", authed=True,
        body={**EVENT, "message": "x" * 2001}),
    Bad("metadata not an object", "POST", COMMENTARY, 422, "validation_failed", authed=True,
        body={**EVENT, "metadata": [1]}),
    Bad("metadata with NUL", "POST", COMMENTARY, 422, "validation_failed", authed=True,
        body={**EVENT, "metadata": {"a": "\x00"}}),
    Bad("metadata number too big", "POST", COMMENTARY, 422, "validation_failed", authed=True,
        body={**EVENT, "metadata": {"a": [1, {"b": 5.7e53}]}}),
    Bad("metadata integer too big", "POST", COMMENTARY, 422, "validation_failed", authed=True,
        raw=b'{"minute": 1, "type": "text", "message": "x", "metadata": {"n": 18446744073709551615}}'),  # noqa: E501
    Bad("team not in match", "POST", COMMENTARY, 422, "validation_failed", authed=True,
        body=lambda w: {**EVENT, "team": w.other_team}),
    Bad("team side unknown", "POST", COMMENTARY, 422, "validation_failed", authed=True,
        body={**EVENT, "team": "visitors"}),
    Bad("team id zero", "POST", COMMENTARY, 422, "validation_failed", authed=True,
        body={**EVENT, "team": 0}),
    Bad("eventType too long", "POST", COMMENTARY, 422, "validation_failed", authed=True,
        body={"minute": 1, "eventType": "d" * 65, "message": "x"}),
    Bad("message blank", "POST", COMMENTARY, 422, "validation_failed", authed=True,
        body={**EVENT, "message": "\u3000\t"}),
    Bad("metadata too deep", "POST", COMMENTARY, 422, "validation_failed", authed=True,
        body={**EVENT, "metadata": too_deep()}),
    Bad("commentary unknown match", "POST", "/api/matches/987654321/commentary", 404,
        "not_found", authed=True, body=EVENT),
]  # fmt: skip


@pytest.fixture
async def world(conn: Conn, factory: Factory) -> World:
    key = (await create_key(conn, f"table-{secrets.token_hex(4)}")).plain
    revoked = await create_key(conn, f"revoked-{secrets.token_hex(4)}")
    await revoke_key(conn, revoked.key.name)
    match = await factory.match(status=MatchStatus.LIVE)
    old = await factory.match(status=MatchStatus.LIVE)
    await conn.execute("DELETE FROM match_changes WHERE match_id = %s", (old["id"],))
    twin = f"Twin {secrets.token_hex(3)}"
    for _ in range(2):  # two teams known by one name: only ids can tell them apart
        await create(conn, "team", twin, "football")
    return World(key, revoked.plain, match, old, twin, await factory.team())


@pytest.mark.parametrize("bad", TABLE, ids=[b.name for b in TABLE])
async def test_every_error_is_the_envelope(edge: EdgeNode, world: World, bad: Bad) -> None:
    path = bad.path(world) if callable(bad.path) else bad.path
    headers = bad.headers(world) if callable(bad.headers) else dict(bad.headers)
    if bad.authed:
        headers.update(auth(world.key))
    content: bytes | None = bad.raw
    if bad.body is not None:
        body = bad.body(world) if callable(bad.body) else bad.body
        content = orjson.dumps(body)
    if content is not None:
        headers.setdefault("Content-Type", "application/json")
    async with httpx.AsyncClient(base_url=edge.url) as http:
        response = await http.request(bad.method, path, content=content, headers=headers)
    assert_envelope(response, bad.status, bad.code)
    if bad.status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")
    if bad.status == 405:
        assert response.headers["allow"]
    if bad.status == 422:
        assert response.json()["error"]["details"]["errors"]


async def test_a_bad_body_lists_every_problem(edge: EdgeNode, world: World) -> None:
    bad_match = {"sport": "Foot Ball", "homeTeam": True, "startTime": "soon", "venue": "x"}
    bad_event = {"minute": -1, "eventType": " ", "message": "", "team": 0, "metadata": []}
    async with httpx.AsyncClient(base_url=edge.url, headers=auth(world.key)) as http:
        match = await http.post("/api/matches", json=bad_match)
        event = await http.post(COMMENTARY(world), json=bad_event)
    assert_envelope(match, 422, "validation_failed")
    assert_envelope(event, 422, "validation_failed")
    assert [e["field"] for e in match.json()["error"]["details"]["errors"]] == [
        "venue",
        "sport",
        "homeTeam",
        "awayTeam",
        "startTime",
    ]
    errors = event.json()["error"]["details"]["errors"]
    assert [e["field"] for e in errors] == ["minute", "type", "message", "metadata", "team"]
    assert all(set(e) == {"field", "message"} for e in errors)
    assert match.json()["error"]["message"].startswith("the body is invalid: venue: unknown field")


async def test_rate_limit_is_the_envelope(edge_server: EdgeServers) -> None:
    (node,) = edge_server.start(1, LIVESCORE_RATE_LIMIT="1/3600")
    async with httpx.AsyncClient(base_url=node.url) as http:
        await http.get("/api/competitions")
        response = await http.get("/api/competitions")
    assert_envelope(response, 429, "rate_limited")
    assert int(response.headers["retry-after"]) >= 1


async def test_refused_writes_leave_nothing_behind(
    edge: EdgeNode, world: World, conn: Conn
) -> None:
    ghost = f"Ghost {secrets.token_hex(4)}"
    cup = f"Ghost Cup {secrets.token_hex(4)}"
    attempts = [
        {"sport": "football", "homeTeam": ghost, "awayTeam": 987654321, "startTime": START},
        {"sport": "football", "homeTeam": ghost, "awayTeam": world.twin_name, "startTime": START,
         "competition": cup},
        {"sport": "football", "homeTeam": ghost, "awayTeam": "x", "startTime": START,
         "competition": 987654321},
    ]  # fmt: skip
    async with httpx.AsyncClient(base_url=edge.url, headers=auth(world.key)) as http:
        for body in attempts:
            response = await http.post("/api/matches", json=body)
            assert response.status_code in (409, 422), response.text
        bad_event = await http.post(
            f"/api/matches/{world.match['id']}/commentary",
            json={**EVENT, "team": world.other_team},
        )
        assert bad_event.status_code == 422
    for table, name in (("teams", ghost), ("competitions", cup)):
        cur = await conn.execute(f"SELECT count(*) AS n FROM {table} WHERE name = %s", (name,))
        assert (await cur.fetchone() or {}).get("n") == 0, f"{name} left in {table}"
    cur = await conn.execute("SELECT seq FROM matches WHERE id = %s", (world.match["id"],))
    row = await cur.fetchone()
    assert row is not None and row["seq"] == world.match["seq"] + 1  # only the factory's change


# -- mapping at the boundary (in process) -------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (NotFound("match", 3), 404, "not_found"),
        (Conflict("two teams"), 409, "conflict"),
        (InvalidChange("negative score"), 422, "invalid_change"),
    ],
)
def test_store_errors_map_to_statuses(exc: Exception, status: int, code: str) -> None:
    error = to_api_error(exc, None)
    assert (error.status, error.code) == (status, code)


async def test_unexpected_errors_are_a_generic_500_logged_with_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class FakeRequest:
        path = "/api/boom"

    with caplog.at_level(logging.ERROR, logger="livescore.edge"):
        try:
            raise RuntimeError("secret internals")
        except RuntimeError as exc:
            response = await handle_exception(FakeRequest(), exc)  # type: ignore[arg-type]
    assert response.status == 500
    body = orjson.loads(response.body or b"")
    assert body == {
        "error": {
            "code": "internal_error",
            "message": "internal server error; the incident is logged",
            "details": {},
        }
    }
    assert "secret internals" not in (response.body or b"").decode()
    record = next(r for r in caplog.records if "edge.unhandled" in r.getMessage())
    assert record.exc_info is not None
