"""Schema-driven: schemathesis generates requests from /openapi.json for every
operation (valid and invalid ones) against a live node with the seeded matchday,
and every answer must be documented, match its schema, and never be a 5xx."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from store.apikeys import create_key
from store.db import connect
from store.matches import MatchFilter, list_matches
from store.seed import seed
from tests.conftest import Services
from tests.edge.conftest import EdgeNode, EdgeServers

pytestmark = pytest.mark.slow


@schemathesis.check
def negative_data_rejected(ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    """``negative_data_rejection``, counting a 431 as a rejection too: a request
    whose line and headers pass 8 KiB (schemathesis repeats an array parameter
    dozens of times) is refused whole, before any parameter is read, with the
    documented 431; schemathesis's list of rejections has no 431."""
    if response.status_code == 431:
        return None
    return negative_data_rejection(ctx, response, case)


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejected,
]
#: Examples per operation and mode: about 15 s in all (1500 each ran clean in ~2 min).
EXAMPLES = 50


async def _prepare(database_url: str) -> tuple[str, list[int]]:
    conn = await connect(database_url)
    async with conn:
        await seed(conn)
        key = (await create_key(conn, f"schemathesis-{secrets.token_hex(4)}")).plain
        rows, _ = await list_matches(conn, MatchFilter(), limit=20)
    return key, [row["id"] for row in rows]


@pytest.fixture(scope="module")
def seeded(services: Services) -> tuple[str, list[int]]:
    return asyncio.run(_prepare(services.database_url))


@pytest.fixture(scope="module")
def node(edge_module: EdgeServers) -> EdgeNode:
    return edge_module.start(1)[0]


def operations(node: EdgeNode) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{node.url}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


def test_the_document_is_valid_openapi(node: EdgeNode) -> None:
    found = {(op.method.upper(), op.path) for op in operations(node)}
    # schemathesis leaves out the document's own route (/openapi.json)
    assert found == {
        ("GET", "/health"),
        ("GET", "/metrics"),
        ("GET", "/api/matches"),
        ("POST", "/api/matches"),
        ("GET", "/api/matches/{id}"),
        ("PATCH", "/api/matches/{id}"),
        ("DELETE", "/api/matches/{id}/override"),
        ("GET", "/api/matches/{id}/commentary"),
        ("POST", "/api/matches/{id}/commentary"),
        ("GET", "/api/matches/{id}/changes"),
        ("GET", "/api/competitions"),
        ("GET", "/api/teams"),
        ("GET", "/api/competitions/{id}/standings"),
        ("GET", "/ws"),
        ("GET", "/sse"),
    }


def headers_negated(case: schemathesis.Case) -> bool:
    """Whether the case's headers are the invalid part (e.g. no Authorization): then
    they are sent as generated, not overridden with a valid key, or a valid request
    would be judged as an invalid one the server accepted."""
    component = case.meta.components.get(ParameterLocation.HEADER) if case.meta else None
    return component is not None and component.mode.is_negative


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_generated_requests_find_no_server_errors_or_schema_breaks(
    node: EdgeNode, seeded: tuple[str, list[int]], mode: str
) -> None:
    key, match_ids = seeded
    generation = schemathesis.GenerationMode(mode)
    failures: list[str] = []
    for operation in operations(node):
        if operation.path == "/sse":
            continue  # a stream that opens never ends: tests/edge/test_sse.py covers it
        strategy = operation.as_strategy(generation_mode=generation)
        if "{id}" in operation.path:
            # also aim at matches that exist, or every answer would be a 404
            strategy = st.one_of(
                strategy,
                *(
                    operation.as_strategy(generation_mode=generation, path_parameters={"id": i})
                    for i in match_ids[:3]
                ),
            )

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def run(case: schemathesis.Case) -> None:
            writes = ("POST", "PATCH", "DELETE")
            headers = None
            if case.method in writes and not headers_negated(case):
                headers = {"Authorization": f"Bearer {key}"}
            case.call_and_validate(base_url=node.url, headers=headers, checks=CHECKS)

        try:
            run()
        except Unsatisfiable:
            assert mode == "negative"  # nothing to break in a route without inputs
        except Exception as exc:  # collect every operation's failure, report them together
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)
