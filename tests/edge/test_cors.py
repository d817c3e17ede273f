"""CORS against a real node: the headers on reads, HEAD, writes and errors, the
OPTIONS preflight, an origin that is not listed, and the setting parsed.
A real browser calling the API from another origin: tests/ws/test_cors_browser.py."""

from __future__ import annotations

import httpx
import pytest

from edge.cors import ALLOW_HEADERS, EXPOSE_HEADERS
from livescore.config import load_settings
from livescore.errors import ConfigError
from tests.edge.conftest import EdgeNode, EdgeServers, auth
from tests.edge.test_errors import assert_envelope
from tests.factories import Factory

pytestmark = pytest.mark.slow

APP = "http://app.example:3000"
OTHER = "https://evil.example"
EVENT = {"minute": 12, "type": "yellow", "message": "Booked"}


def preflight(method: str, headers: str = "authorization,content-type") -> dict[str, str]:
    return {
        "Origin": APP,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


def assert_any_origin(response: httpx.Response) -> None:
    assert response.headers["access-control-allow-origin"] == "*", response.headers
    assert response.headers["access-control-expose-headers"] == EXPOSE_HEADERS
    assert "access-control-allow-credentials" not in response.headers


# -- the default: any origin ---------------------------------------------------------------


async def test_reads_head_writes_and_errors_allow_any_origin(
    edge: EdgeNode, factory: Factory, api_key: str
) -> None:
    match = await factory.match()
    path = f"/api/matches/{match['id']}"
    async with httpx.AsyncClient(base_url=edge.url, headers={"Origin": APP}) as http:
        listed = await http.get("/api/matches")
        one = await http.get(path)
        head = await http.head(path)
        revalidated = await http.get(path, headers={"If-None-Match": one.headers["etag"]})
        created = await http.post(f"{path}/commentary", json=EVENT, headers=auth(api_key))
        unauthorized = await http.post(f"{path}/commentary", json=EVENT)
        invalid = await http.post(f"{path}/commentary", json={}, headers=auth(api_key))
        missing = await http.get("/api/matches/999999999")
        bad_query = await http.get("/api/matches?bogus=1")
        without_origin = await http.get("/api/matches", headers={"Origin": ""})
    for response in (listed, one, head, revalidated, created):
        assert response.status_code in (200, 201, 304), response.text
        assert_any_origin(response)
    assert revalidated.status_code == 304
    assert created.status_code == 201 and created.headers["location"]
    assert_envelope(unauthorized, 401, "missing_api_key")
    assert_envelope(invalid, 422, "validation_failed")
    assert_envelope(missing, 404)
    assert_envelope(bad_query, 400, "invalid_parameter")
    for response in (unauthorized, invalid, missing, bad_query, without_origin):
        assert_any_origin(response)
    # with * the answer never depends on the Origin: nothing to Vary on
    assert "origin" not in listed.headers.get("vary", "").lower()


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/api/matches", "GET, HEAD, POST, OPTIONS"),
        ("/api/matches/{id}", "GET, HEAD, PATCH, OPTIONS"),
        ("/api/matches/{id}/override", "DELETE, OPTIONS"),
        ("/api/matches/{id}/commentary", "GET, HEAD, POST, OPTIONS"),
        ("/api/matches/{id}/changes", "GET, HEAD, OPTIONS"),
        ("/api/teams", "GET, HEAD, OPTIONS"),
        ("/health", "GET, HEAD, OPTIONS"),
    ],
)
async def test_the_preflight_is_a_204_naming_the_paths_methods(
    edge: EdgeNode, factory: Factory, path: str, methods: str
) -> None:
    match = await factory.match()
    url = path.replace("{id}", str(match["id"]))
    async with httpx.AsyncClient(base_url=edge.url) as http:
        # a preflight carries the actual request's query string: no query rule applies
        response = await http.options(f"{url}?status=live", headers=preflight("POST"))
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["access-control-allow-methods"] == methods
    assert response.headers["allow"] == methods
    assert response.headers["access-control-allow-headers"] == ALLOW_HEADERS
    assert response.headers["access-control-max-age"] == "600"


async def test_a_405_still_names_the_allowed_methods(edge: EdgeNode, factory: Factory) -> None:
    match = await factory.match()
    async with httpx.AsyncClient(base_url=edge.url) as http:
        response = await http.put(f"/api/matches/{match['id']}")
    assert_envelope(response, 405, "method_not_allowed")
    assert "GET" in response.headers["allow"] and "OPTIONS" in response.headers["allow"]


async def test_errors_before_any_route_are_readable_from_another_origin(
    edge: EdgeNode, factory: Factory
) -> None:
    """404 for an unknown path, 405 and 413 come from Sanic, not a route: they carry
    the CORS headers all the same, so a page on another origin can read them."""
    match = await factory.match()
    origin = {"Origin": "https://elsewhere.example"}
    async with httpx.AsyncClient(base_url=edge.url, headers=origin) as http:
        unknown = await http.get("/api/nothing-here")
        wrong_method = await http.put(f"/api/matches/{match['id']}")
        too_big = await http.post(
            "/api/matches", content=b"x" * (65 * 1024), headers={"Content-Type": "application/json"}
        )
    for response, status in ((unknown, 404), (wrong_method, 405), (too_big, 413)):
        assert response.status_code == status, response.text
        assert response.headers["access-control-allow-origin"] == "*"
        assert "ETag" in response.headers["access-control-expose-headers"]


async def test_preflights_spend_no_rate_limit_budget(
    edge_server: EdgeServers, factory: Factory, api_key: str
) -> None:
    (node,) = edge_server.start(1, LIVESCORE_RATE_LIMIT="3/3600")
    match = await factory.match()
    commentary = f"/api/matches/{match['id']}/commentary"
    async with httpx.AsyncClient(base_url=node.url, headers={"Origin": APP}) as http:
        preflights = [await http.options(commentary, headers=preflight("POST")) for _ in range(10)]
        writes = [await http.post(commentary, json=EVENT, headers=auth(api_key)) for _ in range(3)]
        refused = await http.post(commentary, json=EVENT, headers=auth(api_key))
        still = await http.options(commentary, headers=preflight("POST"))
    assert [r.status_code for r in preflights] == [204] * 10
    assert [r.status_code for r in writes] == [201] * 3, [r.text for r in writes]
    # a browser on another origin can read the 429 and its Retry-After
    assert_envelope(refused, 429, "rate_limited")
    assert_any_origin(refused)
    assert int(refused.headers["retry-after"]) > 0
    assert still.status_code == 204


# -- a list of origins ---------------------------------------------------------------------


async def test_a_listed_origin_is_echoed_and_another_is_refused(
    edge_server: EdgeServers, factory: Factory, api_key: str
) -> None:
    (node,) = edge_server.start(1, LIVESCORE_CORS_ORIGINS=f"{APP}, https://scores.example")
    match = await factory.match()
    commentary = f"/api/matches/{match['id']}/commentary"
    async with httpx.AsyncClient(base_url=node.url) as http:
        ok_read = await http.get("/api/matches", headers={"Origin": APP})
        ok_preflight = await http.options(commentary, headers=preflight("POST"))
        ok_write = await http.post(commentary, json=EVENT, headers={"Origin": APP, **auth(api_key)})
        ok_error = await http.post(commentary, json={}, headers={"Origin": APP, **auth(api_key)})
        other_read = await http.get("/api/matches", headers={"Origin": OTHER})
        other_preflight = await http.options(
            commentary, headers={**preflight("POST"), "Origin": OTHER}
        )
        no_origin = await http.get("/api/matches")
        plain_options = await http.options(commentary)
    for response in (ok_read, ok_write, ok_error):
        assert response.headers["access-control-allow-origin"] == APP, response.headers
        assert response.headers["access-control-expose-headers"] == EXPOSE_HEADERS
        assert "Origin" in response.headers["vary"]
    assert ok_read.status_code == 200 and ok_write.status_code == 201
    assert_envelope(ok_error, 422, "validation_failed")
    assert ok_preflight.status_code == 204
    assert ok_preflight.headers["access-control-allow-origin"] == APP
    assert ok_preflight.headers["access-control-allow-methods"] == "GET, HEAD, POST, OPTIONS"
    assert ok_preflight.headers["vary"] == "Origin"
    # another origin is served (CORS is no access control) but a browser may not read it
    assert other_read.status_code == 200
    assert "access-control-allow-origin" not in other_read.headers
    assert "Origin" in other_read.headers["vary"]
    assert_envelope(other_preflight, 403, "origin_not_allowed")
    assert "LIVESCORE_CORS_ORIGINS" in other_preflight.json()["error"]["message"]
    assert "access-control-allow-origin" not in other_preflight.headers
    assert no_origin.status_code == 200
    assert "access-control-allow-origin" not in no_origin.headers
    # OPTIONS without an Origin is no preflight: it names the methods
    assert plain_options.status_code == 204
    assert plain_options.headers["allow"] == "GET, HEAD, POST, OPTIONS"
    assert "access-control-allow-origin" not in plain_options.headers


# -- the setting ---------------------------------------------------------------------------

BASE = {"DATABASE_URL": "postgresql://x/y", "REDIS_URL": "redis://x"}


@pytest.mark.parametrize(
    ("value", "origins"),
    [
        (None, ("*",)),
        ("", ("*",)),
        (" * ", ("*",)),
        ("https://scores.example", ("https://scores.example",)),
        (
            "https://scores.example, http://localhost:3000,",
            ("https://scores.example", "http://localhost:3000"),
        ),
        ("http://[::1]:8080", ("http://[::1]:8080",)),
    ],
)
def test_the_setting_is_parsed(value: str | None, origins: tuple[str, ...]) -> None:
    env = BASE if value is None else {**BASE, "LIVESCORE_CORS_ORIGINS": value}
    assert load_settings(env).cors_origins == origins


@pytest.mark.parametrize(
    "value",
    [
        "scores.example",
        "https://scores.example/",
        "https://a.example/path",
        "*, https://a.example",
        "ftp://files.example",
    ],
)
def test_a_malformed_origin_names_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match="LIVESCORE_CORS_ORIGINS") as raised:
        load_settings({**BASE, "LIVESCORE_CORS_ORIGINS": value})
    assert "\n" not in str(raised.value)
