"""Hostile clients against a live node: generated frames (bad JSON, wrong types,
unknown actions and matches, huge and binary frames, floods). The node answers
with error frames or closes with a documented code, never crashes, and keeps
serving a healthy client."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed

from edge import ws_protocol as wp
from tests.edge.conftest import EdgeNode
from tests.factories import Factory
from tests.ws.helpers import WsClient, metric, ws_url

SERVER_TYPES = {"welcome", "subscribed", "unsubscribed", "pong", "error"}
#: 1006: the node closed (1009/4029/4500) while the client kept writing, so the client's
#: own socket reset before it read the close frame.
CLOSE_CODES = {wp.CLOSE_TOO_BIG, wp.CLOSE_FLOOD, wp.CLOSE_BAD_CLIENT, 1006}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
ids = st.one_of(
    st.integers(min_value=-5, max_value=2**64),
    st.integers(min_value=1, max_value=50),
    json_values,
)
actions = st.fixed_dictionaries(
    {"action": st.sampled_from(["subscribe", "unsubscribe", "ping", "pong", "", "Subscribe"])},
    optional={"matchId": ids, "competitionId": ids, "since": ids, "extra": json_values},
)
frames = st.one_of(
    actions.map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=200),  # mostly not JSON
    st.binary(max_size=200),  # binary frames
    st.integers(min_value=wp.MAX_CLIENT_FRAME + 1, max_value=200_000).map(lambda n: "x" * n),
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(frames, min_size=1, max_size=40), flood=st.integers(0, 300))
async def test_generated_frames_never_break_the_node(
    module_edge: EdgeNode, batch: list[str | bytes], flood: int
) -> None:
    client = await WsClient(ws_url(module_edge)).__aenter__()
    assert client.ws is not None
    try:
        for frame in batch:
            await client.ws.send(frame)
        for _ in range(flood):
            await client.ws.send('{"action": "ping"}')
        # replies to earlier frames (a "subscribed" for a generated matchId that
        # exists, errors) may still be on their way: wait for the ping's answer
        start = len(client.frames)
        await client.send({"action": "ping"})
        await client.wait_for(lambda f: f["type"] in ("pong", "error"), 10, start)
    except (ConnectionClosed, OSError, AssertionError):
        # closed by the node: only ever with one of the documented codes
        await asyncio.wait_for(client.closed.wait(), 10)
        assert client.close_code in CLOSE_CODES, (client.close_code, client.frames[-3:])
    finally:
        with contextlib.suppress(ConnectionClosed, OSError):
            await client.aclose()
    assert module_edge.process.poll() is None, "the node died"
    for received in client.frames:
        assert received["type"] in SERVER_TYPES, received
        if received["type"] == "error":
            assert received["code"] in wp.ERROR_CODES and received["message"]


async def test_the_node_still_serves_after_the_fuzz(
    module_edge: EdgeNode, factory: Factory
) -> None:
    match = await factory.match()
    async with WsClient(ws_url(module_edge)) as client:
        reply: dict[str, Any] = await client.request(
            {"action": "subscribe", "matchId": match["id"]}
        )
        assert reply["type"] == "subscribed" and reply["matchId"] == match["id"]
    assert module_edge.process.poll() is None
    assert metric(module_edge, "livescore_ws_errors_total") > 0
