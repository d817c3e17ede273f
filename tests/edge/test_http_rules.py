"""Rules every route follows, checked against the app's own route table so a new
route cannot slip past them: unknown query parameters are a 400 on every route,
every GET route answers HEAD, and oversized request headers are a 431."""

from __future__ import annotations

import re

import httpx
import pytest

from edge.app import create_app
from livescore.config import load_settings
from livescore.runtime import Endpoints
from tests.edge.conftest import EdgeNode
from tests.edge.test_errors import assert_envelope
from tests.factories import Factory

pytestmark = pytest.mark.slow

#: What each GET route of the app is asked at, ``{id}`` filled with a real match.
GET_PATHS = {
    "/": "/",
    "/favicon.ico": "/favicon.ico",
    "/health": "/health",
    "/metrics": "/metrics",
    "/openapi.json": "/openapi.json",
    "/ws": "/ws",
    "/sse": "/sse",
    "/api/matches": "/api/matches",
    "/api/matches/{match_id}": "/api/matches/{id}",
    "/api/matches/{match_id}/commentary": "/api/matches/{id}/commentary",
    "/api/matches/{match_id}/changes": "/api/matches/{id}/changes",
    "/api/competitions": "/api/competitions",
    "/api/teams": "/api/teams",
    "/api/competitions/{competition_id}/standings": "/api/competitions/{competition}/standings",
}
POST_PATHS = ["/api/matches", "/api/matches/{id}/commentary"]


async def fill(template: str, factory: Factory) -> str:
    """A path to ask: ``{id}`` a real match, ``{competition}`` its competition."""
    competition = await factory.competition("Rules League")
    match = await factory.match(competition=competition)
    return template.replace("{id}", str(match["id"])).replace("{competition}", str(competition))


def app_routes() -> set[tuple[str, str]]:
    """(method, path template) of every route the edge app registers."""
    settings = load_settings({"DATABASE_URL": "postgresql://x/y", "REDIS_URL": "redis://x"})
    app = create_app(
        settings,
        Endpoints("postgresql://x/y", "redis://x", embedded_postgres=False, embedded_redis=False),
        name=f"rules{id(settings)}",
    )
    found: set[tuple[str, str]] = set()
    for route in app.router.routes:
        path = "/" + re.sub(r"<([A-Za-z_]+)(?::[^>]*)?>", r"{\1}", route.path).lstrip("/")
        for method in route.methods:
            found.add((method, path))
    return found


def test_the_rules_below_cover_every_route_of_the_app() -> None:
    routes = app_routes()
    gets = {path for method, path in routes if method == "GET"}
    assert gets == set(GET_PATHS), "a GET route was added or removed: list it in GET_PATHS"
    posts = {path.replace("{match_id}", "{id}") for method, path in routes if method == "POST"}
    assert posts == set(POST_PATHS)
    heads = {path for method, path in routes if method == "HEAD"}
    assert heads == gets - {"/ws", "/sse"}, "every GET route but the streams answers HEAD"


@pytest.mark.parametrize("template", sorted(GET_PATHS.values()))
async def test_an_unknown_query_parameter_is_a_400_on_every_get_route(
    edge: EdgeNode, factory: Factory, template: str
) -> None:
    path = await fill(template, factory)
    async with httpx.AsyncClient(base_url=edge.url) as http:
        unknown = await http.get(f"{path}?bogus=1")
        repeated = await http.get(f"{path}?bogus=1&bogus=2")
        plain = await http.get(path)
    assert_envelope(unknown, 400, "invalid_parameter")
    assert unknown.json()["error"]["details"] == {"parameter": "bogus"}
    assert "bogus" in unknown.json()["error"]["message"]
    assert_envelope(repeated, 400, "invalid_parameter")
    # without it the route answers (the WebSocket wants an upgrade: 426; a stream
    # with nothing named to follow is a 400 before it starts)
    assert plain.status_code == {"/ws": 426, "/sse": 400}.get(path, 200), plain.text


@pytest.mark.parametrize("template", POST_PATHS)
async def test_an_unknown_query_parameter_is_a_400_on_every_post_route(
    edge: EdgeNode, factory: Factory, api_key: str, template: str
) -> None:
    match = await factory.match()
    path = template.replace("{id}", str(match["id"]))
    async with httpx.AsyncClient(base_url=edge.url) as http:
        response = await http.post(
            f"{path}?dryRun=1", json={}, headers={"Authorization": f"Bearer {api_key}"}
        )
    assert_envelope(response, 400, "invalid_parameter")


async def test_known_query_parameters_still_work_after_the_rule(
    edge: EdgeNode, factory: Factory
) -> None:
    match = await factory.match()
    async with httpx.AsyncClient(base_url=edge.url) as http:
        for _ in range(2):  # the second time from the route's memory of accepted strings
            page = await http.get("/api/matches?limit=1&status=scheduled")
            assert page.status_code == 200, page.text
        assert (await http.get(f"/api/matches/{match['id']}/changes?since=0")).status_code == 200
        assert (await http.get("/?date=2030-01-01")).status_code == 200
        assert_envelope(await http.get("/api/matches?limit=1&sort=x"), 400, "invalid_parameter")


@pytest.mark.parametrize(
    "template", sorted(p for p in GET_PATHS.values() if p not in ("/ws", "/sse", "/metrics"))
)
async def test_head_answers_every_get_route_with_its_headers_and_no_body(
    edge: EdgeNode, factory: Factory, template: str
) -> None:
    path = await fill(template, factory)
    async with httpx.AsyncClient(base_url=edge.url) as http:
        get = await http.get(path)
        head = await http.head(path)
    assert get.status_code == 200
    assert head.status_code == 200, head.text
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    if path == "/health":  # its figures move between two requests
        assert int(head.headers["content-length"]) > 0
    else:
        assert head.headers["content-length"] == str(len(get.content))
    if "etag" in get.headers:
        assert head.headers["etag"] == get.headers["etag"]


async def test_head_on_metrics_and_an_error_keep_status_and_drop_the_body(
    edge: EdgeNode,
) -> None:
    async with httpx.AsyncClient(base_url=edge.url) as http:
        metrics = await http.head("/metrics")
        missing = await http.head("/api/matches/987654321")
        refused = await http.head("/health?x=1")
    assert metrics.status_code == 200 and metrics.content == b""
    assert metrics.headers["content-type"].startswith("text/plain")
    assert missing.status_code == 404 and missing.content == b""
    assert refused.status_code == 400 and refused.content == b""


async def test_head_requests_are_counted_by_method(edge: EdgeNode) -> None:
    async with httpx.AsyncClient(base_url=edge.url) as http:
        await http.head("/api/competitions")
        text = (await http.get("/metrics")).text
    assert re.search(
        r'livescore_http_requests_total\{route="/api/competitions",method="HEAD",status="200"\} '
        r"[1-9]",
        text,
    ), text


@pytest.mark.parametrize("path", ["/api/matches", "/health", "/ws"])
async def test_headers_over_8_kib_are_a_431_not_a_body_too_large(edge: EdgeNode, path: str) -> None:
    async with httpx.AsyncClient(base_url=edge.url) as http:
        response = await http.get(path, headers={"X-Padding": "a" * 9000})
        many = await http.get(path, headers={f"X-Pad-{n}": "b" * 100 for n in range(100)})
        after = await http.get("/api/competitions")
    for refused in (response, many):
        assert_envelope(refused, 431, "request_header_fields_too_large")
        assert "header" in refused.json()["error"]["message"]
        assert "body" not in refused.json()["error"]["message"]
    assert after.status_code == 200, "the node serves on"


async def test_a_body_over_64_kib_is_still_a_413(edge: EdgeNode, api_key: str) -> None:
    async with httpx.AsyncClient(base_url=edge.url) as http:
        response = await http.post(
            "/api/matches",
            content=b'{"x": "' + b"a" * 70_000 + b'"}',
            headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
        )
    assert_envelope(response, 413, "payload_too_large")
    assert "body" in response.json()["error"]["message"]
