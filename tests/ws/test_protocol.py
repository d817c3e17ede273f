"""The /ws protocol (CONTRACT.md section 5): frames as pure functions, then the
same table against a real edge node."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from websockets.frames import Frame, Opcode

from edge import ws_protocol as wp
from tests.edge.conftest import EdgeNode
from tests.factories import Factory
from tests.ws.helpers import WsClient, http_get, ws_url

# -- pure parsing ------------------------------------------------------------------------

PARSED: list[tuple[Any, wp.Action]] = [
    ({"action": "ping"}, wp.Ping()),
    ({"action": "subscribe", "matchId": 1}, wp.Subscribe(1)),
    ({"action": "subscribe", "matchId": 1, "since": 41}, wp.Subscribe(1, 41)),
    ({"action": "subscribe", "matchId": 1, "since": 0}, wp.Subscribe(1, 0)),
    ({"action": "subscribe", "matchId": 1, "since": None}, wp.Subscribe(1)),
    ({"action": "subscribe", "competitionId": 7}, wp.SubscribeCompetition(7)),
    ({"action": "unsubscribe", "matchId": 1}, wp.Unsubscribe(1)),
    ({"action": "unsubscribe", "competitionId": 7}, wp.UnsubscribeCompetition(7)),
    ({"action": "subscribe", "matchId": 1, "extra": "ignored"}, wp.Subscribe(1)),
]

REFUSED: list[tuple[Any, str]] = [
    ("not json", "bad_json"),
    ("{", "bad_json"),
    ("", "bad_json"),
    (b"\x00binary", "binary_frame"),
    ([], "bad_frame"),
    ("42", "bad_frame"),
    ('"subscribe"', "bad_frame"),
    ({}, "bad_frame"),
    ({"action": 1}, "bad_frame"),
    ({"action": None}, "bad_frame"),
    ({"action": "dance"}, "unknown_action"),
    ({"action": "SUBSCRIBE", "matchId": 1}, "unknown_action"),
    ({"action": "subscribe"}, "bad_frame"),
    ({"action": "subscribe", "matchId": 1, "competitionId": 2}, "bad_frame"),
    ({"action": "subscribe", "matchId": "1"}, "bad_frame"),
    ({"action": "subscribe", "matchId": 1.0}, "bad_frame"),
    ({"action": "subscribe", "matchId": True}, "bad_frame"),
    ({"action": "subscribe", "matchId": 0}, "bad_frame"),
    ({"action": "subscribe", "matchId": -3}, "bad_frame"),
    ({"action": "subscribe", "matchId": 2**63}, "bad_frame"),
    ({"action": "subscribe", "matchId": [1]}, "bad_frame"),
    ({"action": "subscribe", "matchId": 1, "since": -1}, "bad_frame"),
    ({"action": "subscribe", "matchId": 1, "since": "41"}, "bad_frame"),
    ({"action": "subscribe", "competitionId": 7, "since": 3}, "bad_frame"),
    ({"action": "unsubscribe", "competitionId": {}}, "bad_frame"),
]


def _text(value: Any) -> str | bytes:
    return value if isinstance(value, str | bytes) else orjson.dumps(value).decode()


@pytest.mark.parametrize(("frame", "action"), PARSED)
def test_actions_parse(frame: Any, action: wp.Action) -> None:
    assert wp.parse_action(_text(frame)) == action


@pytest.mark.parametrize(("frame", "code"), REFUSED)
def test_bad_frames_name_their_problem(frame: Any, code: str) -> None:
    with pytest.raises(wp.ProtocolError) as caught:
        wp.parse_action(_text(frame))
    assert caught.value.code == code
    body = orjson.loads(caught.value.frame())
    assert body["type"] == "error" and body["code"] == code and body["message"]


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_text_frame_matches_the_websockets_library(size: int) -> None:
    payload = b"x" * size
    expected = Frame(Opcode.TEXT, payload).serialize(mask=False, extensions=[])
    assert wp.text_frame(payload) == expected


def test_token_bucket() -> None:
    bucket = wp.TokenBucket(rate=2, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(0.5) is True  # one token back after half a second
    assert bucket.take(0.5) is False


# -- the same against a live node -------------------------------------------------------


async def test_welcome_names_the_node_and_protocol(module_edge: EdgeNode) -> None:
    async with WsClient(ws_url(module_edge)) as client:
        assert client.frames[0] == {
            "type": "welcome",
            "node": module_edge.node_id,
            "protocol": wp.PROTOCOL_VERSION,
        }
        assert client.ws is not None
        # no permessage-deflate: every client gets the same bytes
        assert client.ws.response is not None
        assert "Sec-WebSocket-Extensions" not in client.ws.response.headers


async def test_ping_subscribe_unsubscribe(module_edge: EdgeNode, factory: Factory) -> None:
    match = await factory.match(home_score=2, away_score=1)
    async with WsClient(ws_url(module_edge)) as client:
        assert await client.request({"action": "ping"}) == {"type": "pong"}
        subscribed = await client.request({"action": "subscribe", "matchId": match["id"]})
        assert subscribed["type"] == "subscribed"
        assert subscribed["matchId"] == match["id"] and subscribed["seq"] == 1
        snapshot = subscribed["snapshot"]
        assert (snapshot["id"], snapshot["homeScore"], snapshot["awayScore"]) == (match["id"], 2, 1)
        assert snapshot["seq"] == 1
        again = await client.request({"action": "subscribe", "matchId": match["id"]})
        assert again["type"] == "error" and again["code"] == "bad_frame"
        assert await client.request({"action": "unsubscribe", "matchId": match["id"]}) == {
            "type": "unsubscribed",
            "matchId": match["id"],
        }
        missing = await client.request({"action": "unsubscribe", "matchId": match["id"]})
        assert missing["code"] == "not_subscribed"


async def test_resume_at_the_current_seq_answers_one_subscribed(
    module_edge: EdgeNode, factory: Factory
) -> None:
    """``since`` equal to the match's seq: one resumed ``subscribed``, not two."""
    match = await factory.match(home_score=2, away_score=1)
    status, body = http_get(module_edge, f"/api/matches/{match['id']}")
    assert status == 200
    seq = orjson.loads(body)["data"]["seq"]
    assert seq >= 1
    async with WsClient(ws_url(module_edge)) as client:
        start = len(client.frames)
        subscribed = await client.request(
            {"action": "subscribe", "matchId": match["id"], "since": seq}
        )
        assert subscribed == {
            "type": "subscribed",
            "matchId": match["id"],
            "seq": seq,
            "resumed": True,
        }
        # the pong comes after anything else the subscribe answered
        assert await client.request({"action": "ping"}) == {"type": "pong"}
        answers = [f for f in client.frames[start:] if f["type"] == "subscribed"]
        assert answers == [subscribed]


async def test_competition_subscription(module_edge: EdgeNode, factory: Factory) -> None:
    comp = await factory.competition()
    first = await factory.match(competition=comp)
    second = await factory.match(competition=comp)
    async with WsClient(ws_url(module_edge)) as client:
        start = len(client.frames)
        await client.send({"action": "subscribe", "competitionId": comp})
        await client.wait_for(lambda f: f.get("matchId") == second["id"], start=start)
        frames = client.frames[start:]
        assert frames[0] == {
            "type": "subscribed",
            "competitionId": comp,
            "matchIds": [first["id"], second["id"]],
        }
        # the competition's current table right after its subscribed frame, then its
        # matches (a table pushed for the factory's own writes may come in between)
        assert frames[1]["type"] == "standings:update" and frames[1]["competitionId"] == comp
        assert {f["type"] for f in frames[2:]} <= {"subscribed", "standings:update"}
        assert [
            (f["matchId"], f["competitionId"]) for f in frames[2:] if f["type"] == "subscribed"
        ] == [(first["id"], comp), (second["id"], comp)]
        assert await client.request({"action": "unsubscribe", "competitionId": comp}) == {
            "type": "unsubscribed",
            "competitionId": comp,
        }


@pytest.mark.parametrize(("frame", "code"), [*REFUSED[:12], *REFUSED[-6:]])
async def test_bad_frames_get_error_frames_on_a_live_node(
    module_edge: EdgeNode, frame: Any, code: str
) -> None:
    async with WsClient(ws_url(module_edge)) as client:
        reply = await client.request(_text(frame))
        assert reply["type"] == "error" and reply["code"] == code
        assert await client.request({"action": "ping"}) == {"type": "pong"}


async def test_unknown_match_and_competition(module_edge: EdgeNode) -> None:
    async with WsClient(ws_url(module_edge)) as client:
        reply = await client.request({"action": "subscribe", "matchId": 2**62})
        assert (reply["code"], reply["matchId"]) == ("unknown_match", 2**62)
        reply = await client.request({"action": "subscribe", "competitionId": 2**62})
        assert reply["code"] == "unknown_competition"
        reply = await client.request({"action": "subscribe", "matchId": 2**62, "since": 3})
        assert reply["code"] == "unknown_match"


async def test_oversized_frame_is_closed_with_1009(module_edge: EdgeNode) -> None:
    async with WsClient(ws_url(module_edge)) as client:
        await client.send('{"action": "ping", "pad": "' + "x" * wp.MAX_CLIENT_FRAME + '"}')
        await client.closed.wait()
        assert client.close_code == wp.CLOSE_TOO_BIG
    async with WsClient(ws_url(module_edge)) as other:  # the node carries on
        assert await other.request({"action": "ping"}) == {"type": "pong"}


async def test_a_flood_is_rate_limited_then_closed(module_edge: EdgeNode) -> None:
    async with WsClient(ws_url(module_edge)) as client:
        assert client.ws is not None
        for _ in range(400):
            await client.ws.send('{"action": "ping"}')
        await client.closed.wait()
        assert client.close_code == wp.CLOSE_FLOOD
        codes = [f.get("code") for f in client.frames if f["type"] == "error"]
        assert "rate_limited" in codes
        pongs = sum(1 for f in client.frames if f["type"] == "pong")
        assert 50 <= pongs < 400


async def test_the_live_page_is_served_at_root(module_edge: EdgeNode) -> None:
    status, body = http_get(module_edge, "/")
    assert status == 200
    assert b"<title>LiveScore</title>" in body and b"/ws" in body


async def test_favicon_is_a_tiny_icon_not_a_404(module_edge: EdgeNode) -> None:
    status, body = http_get(module_edge, "/favicon.ico")
    assert status == 200
    assert body[:4] == b"\x00\x00\x01\x00" and b"\x89PNG\r\n" in body  # an ICO holding a PNG
    assert len(body) < 200


async def test_origin_check(edges: Any) -> None:
    (node,) = edges(1, LIVESCORE_WS_ORIGINS="https://scores.example")
    async with WsClient(ws_url(node), origin="https://scores.example") as client:
        assert client.frames[0]["type"] == "welcome"
    with pytest.raises(Exception, match="403"):
        async with WsClient(ws_url(node), origin="https://evil.example"):
            pass
