"""Hostile bodies against every write route of a real node (issue 10): deep
nesting, huge strings, odd unicode, wrong types, unknown fields. Every answer
is a documented 4xx or a 2xx, never a 500; the node never dies; whatever was
written is published (the relay's backlog drains to zero) and a subscriber
still receives changes afterwards."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.relay import Relay
from store.apikeys import create_key
from store.changes import backlog
from store.db import Pool
from tests.edge.conftest import EdgeNode
from tests.factories import Factory
from tests.waiting import eventually
from tests.ws.helpers import WsClient, play, ws_url

odd_text = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=30),
    st.sampled_from(["\x00", "\u202e", "\ufeff", "𝔊𝔬𝔞𝔩", "' OR 1=1 --", "<script>", ""]),
    st.integers(min_value=2_000, max_value=70_000).map(lambda n: "x" * n),
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), odd_text)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(odd_text, inner, max_size=4),
    max_leaves=12,
)


def nested(depth: int, leaf: Any) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"k": value} if depth % 2 else [value]
    return value


deep = st.builds(nested, st.integers(min_value=1, max_value=400), scalars)
hostile = st.one_of(json_values, deep)

commentary_bodies = st.fixed_dictionaries(
    {},
    optional={
        "minute": st.one_of(st.integers(min_value=-5, max_value=300), hostile),
        "type": st.one_of(st.sampled_from(["goal", "text", "yellow", "card"]), hostile),
        "eventType": st.sampled_from(["goal", "corner"]),
        "message": st.one_of(odd_text, hostile),
        "actor": st.one_of(odd_text, hostile),
        "team": st.one_of(st.sampled_from(["home", "away"]), hostile),
        "addedTime": hostile,
        "metadata": hostile,
        "unknown": hostile,
    },
)
match_bodies = st.fixed_dictionaries(
    {},
    optional={
        "sport": st.one_of(st.just("football"), odd_text),
        "homeTeam": st.one_of(odd_text, hostile),
        "awayTeam": st.one_of(odd_text, hostile),
        "startTime": st.one_of(st.just("2026-11-29T20:00:00Z"), odd_text, hostile),
        "endTime": hostile,
        "competition": st.one_of(odd_text, hostile),
    },
)
raw_bodies = st.one_of(
    st.binary(max_size=300),
    st.integers(min_value=300, max_value=5_000).map(lambda n: b"[" * n),  # past any decoder
    st.just(b'{"metadata": "\\ud800"}'),  # a lone surrogate
)


def encode(body: Any) -> bytes:
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:  # deeper than orjson writes: the raw text will do
        return repr(body).encode()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    commentary=commentary_bodies,
    match=match_bodies,
    raw=raw_bodies,
    route=st.sampled_from(["commentary", "matches"]),
)
async def test_generated_bodies_never_get_a_500_on_any_write_route(
    module_edge: EdgeNode,
    module_relay: Relay,
    factory: Factory,
    pool: Pool,
    commentary: dict[str, Any],
    match: dict[str, Any],
    raw: bytes,
    route: str,
) -> None:
    key = await _key(pool)
    target = await _match_id(factory)
    path = f"/api/matches/{target}/commentary" if route == "commentary" else "/api/matches"
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=module_edge.url, timeout=15.0) as client:
        for body in (encode(commentary if route == "commentary" else match), raw):
            response = await client.post(path, content=body, headers=headers)
            assert response.status_code < 500, (path, body[:200], response.text[:300])
            assert response.status_code in {200, 201, 400, 404, 409, 413, 415, 422}, response.text
            if response.status_code >= 400:
                assert response.json()["error"]["code"]
    assert module_edge.process.poll() is None, "the node died"


async def test_after_the_fuzz_everything_written_is_published_and_subscribers_still_hear(
    module_edge: EdgeNode, module_relay: Relay, factory: Factory, pool: Pool
) -> None:
    async def drained() -> bool:
        async with pool.connection() as conn:
            return (await backlog(conn)).count == 0

    await eventually(drained, 10, "the relay's backlog to drain to zero", every=0.1)
    async with httpx.AsyncClient(timeout=5.0) as client:
        response = await client.get(f"{module_edge.url}/health")
    assert response.status_code == 200, response.text
    match_id = (await factory.match())["id"]
    async with WsClient(ws_url(module_edge)) as client:
        await client.request({"action": "subscribe", "matchId": match_id})
        async with pool.connection() as conn:
            await play(conn, match_id, 1)
        await eventually(lambda: client.position(match_id) == 1, 10, "a change after the fuzz")


_state: dict[str, Any] = {}


async def _key(pool: Pool) -> str:
    if "key" not in _state:
        async with pool.connection() as conn:
            _state["key"] = (await create_key(conn, f"chaos-{secrets.token_hex(4)}")).plain
    return str(_state["key"])


async def _match_id(factory: Factory) -> int:
    if "match" not in _state:
        _state["match"] = (await factory.match())["id"]
    return int(_state["match"])
