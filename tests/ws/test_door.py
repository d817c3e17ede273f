"""The door (``edge.framework.Door``): a ``/ws`` upgrade request that arrives whole is
answered before Sanic's HTTP machinery sees it; anything else takes Sanic's way,
with the answers it always had. Real edge nodes, bare sockets."""

from __future__ import annotations

import asyncio
import base64
import os

import orjson
import pytest

from edge import ws_frames as wf
from tests.edge.conftest import EdgeNode
from tests.factories import Factory
from tests.waiting import eventually
from tests.ws.conftest import EdgeFactory
from tests.ws.helpers import metric

MASK = b"\x01\x02\x03\x04"
AT_THE_DOOR = 'livescore_ws_upgrades_total{way="door"}'
BY_SANIC = 'livescore_ws_upgrades_total{way="sanic"}'


def upgrade_head(path: str = "/ws", **headers: str) -> bytes:
    fields = {
        "Host": "127.0.0.1",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
    }
    fields.update({name.replace("_", "-"): value for name, value in headers.items()})
    lines = "".join(f"{name}: {value}\r\n" for name, value in fields.items() if value)
    return f"GET {path} HTTP/1.1\r\n{lines}\r\n".encode()


def subscribe(match_id: int) -> bytes:
    payload = orjson.dumps({"action": "subscribe", "matchId": match_id})
    return wf.encode(wf.OP_TEXT, payload, mask=MASK)


async def send_in(
    port: int, pieces: list[bytes]
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect and write ``pieces`` one write each, a pause between them."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for i, piece in enumerate(pieces):
        if i:
            await asyncio.sleep(0.2)  # its own segment: the node reads it apart
        writer.write(piece)
        await writer.drain()
    return reader, writer


async def next_frame(reader: asyncio.StreamReader) -> dict[str, object]:
    head = await asyncio.wait_for(reader.readexactly(2), 10)
    size = head[1] & 0x7F
    if size == 126:
        size = int.from_bytes(await reader.readexactly(2), "big")
    frame: dict[str, object] = orjson.loads(await reader.readexactly(size))
    return frame


async def upgraded(port: int) -> tuple[asyncio.StreamWriter, bytes]:
    """An upgrade in one piece: its writer and the answer's head."""
    reader, writer = await send_in(port, [upgrade_head()])
    return writer, await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)


@pytest.fixture
def node(edges: EdgeFactory) -> EdgeNode:
    return edges(1)[0]


@pytest.mark.parametrize(
    ("way", "split"),
    [("door", None), ("sanic", 30)],
    ids=["head in one piece", "head in two pieces"],
)
async def test_an_upgrade_is_answered_alike_whichever_way_it_takes(
    node: EdgeNode, factory: Factory, way: str, split: int | None
) -> None:
    match = await factory.match()
    data = upgrade_head() + subscribe(match["id"])  # a subscribe right behind the head
    pieces = [data] if split is None else [data[:split], data[split:]]
    before = metric(node, AT_THE_DOOR), metric(node, BY_SANIC)

    reader, writer = await send_in(node.port, pieces)

    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert (await next_frame(reader))["type"] == "welcome"
    subscribed = await next_frame(reader)
    assert (subscribed["type"], subscribed["matchId"]) == ("subscribed", match["id"])
    door, sanic = metric(node, AT_THE_DOOR) - before[0], metric(node, BY_SANIC) - before[1]
    assert (door, sanic) == ((1, 0) if way == "door" else (0, 1))
    writer.close()


async def test_an_address_first_upgrade_waits_for_redis_at_the_door(node: EdgeNode) -> None:
    """The upgrade budget is leased from Redis per address: until this worker holds
    a lease, the upgrade waits for Redis's answer at the door."""
    reader, writer = await send_in(node.port, [upgrade_head()])

    assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).startswith(b"HTTP/1.1 101")
    assert (metric(node, AT_THE_DOOR), metric(node, BY_SANIC)) == (1, 0)
    writer.close()


async def test_an_upgrade_the_rate_limit_refuses_after_the_wait_gets_sanics_429(
    edges: EdgeFactory,
) -> None:
    (node,) = edges(1, LIVESCORE_WS_UPGRADE_RATE="1/60")
    held, head = await upgraded(node.port)
    assert head.startswith(b"HTTP/1.1 101"), head

    reader, writer = await send_in(node.port, [upgrade_head()])

    answer = await asyncio.wait_for(reader.read(65536), 10)
    assert answer.startswith(b"HTTP/1.1 429 "), answer[:80]
    assert b"rate_limited" in answer and b"Retry-After" in answer
    assert (metric(node, AT_THE_DOOR), metric(node, BY_SANIC)) == (1, 0)
    assert metric(node, 'livescore_ws_refused_total{reason="rate"}') == 1
    for each in (held, writer):
        each.close()


@pytest.mark.parametrize(
    ("head", "status", "code"),
    [
        (upgrade_head("/ws?token=x"), 400, "invalid_parameter"),
        (upgrade_head(Sec_WebSocket_Key="not-a-key"), 400, None),
        (upgrade_head(Upgrade=""), 426, None),
        (upgrade_head(Sec_WebSocket_Version="8"), 400, None),
        (upgrade_head(Origin="https://evil.example"), 403, "forbidden_origin"),
    ],
    ids=["query string", "bad key", "no Upgrade", "old version", "origin not allowed"],
)
async def test_what_the_door_does_not_take_gets_sanics_answer(
    edges: EdgeFactory, head: bytes, status: int, code: str | None
) -> None:
    (node,) = edges(1, LIVESCORE_WS_ORIGINS="https://scores.example")
    before = metric(node, AT_THE_DOOR)

    reader, writer = await send_in(node.port, [head])

    answer = await asyncio.wait_for(reader.read(65536), 10)
    assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:80]
    if code is not None:
        assert f'"code":"{code}"'.encode() in answer.replace(b" ", b"")
    assert metric(node, AT_THE_DOOR) == before
    writer.close()


async def test_plain_requests_keep_their_connection_past_the_door(node: EdgeNode) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
    for _ in range(2):
        writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 200 ") or head.startswith(b"HTTP/1.1 503 "), head
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
    writer.close()


async def test_a_connection_that_says_nothing_is_closed_after_the_request_timeout(
    edges: EdgeFactory,
) -> None:
    (node,) = edges(1, SANIC_REQUEST_TIMEOUT="1")
    reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
    started = asyncio.get_running_loop().time()

    assert await asyncio.wait_for(reader.read(), 10) == b""  # closed by the node

    assert asyncio.get_running_loop().time() - started >= 0.9
    writer.close()


async def test_an_address_at_its_cap_gets_the_429_from_sanic(edges: EdgeFactory) -> None:
    (node,) = edges(1, LIVESCORE_WS_MAX_PER_ADDRESS="4")
    held = []
    while len(held) < 4:
        writer, head = await upgraded(node.port)
        assert head.startswith(b"HTTP/1.1 101"), head
        held.append(writer)
    door = metric(node, AT_THE_DOOR)

    reader, writer = await send_in(node.port, [upgrade_head()])

    answer = await asyncio.wait_for(reader.read(65536), 10)
    assert answer.startswith(b"HTTP/1.1 429 "), answer[:80]
    assert b"too_many_connections" in answer
    assert metric(node, AT_THE_DOOR) == door
    for each in [*held, writer]:
        each.close()


async def test_a_client_gone_during_its_admission_leaves_no_slot_taken(
    edges: EdgeFactory,
) -> None:
    (node,) = edges(1, LIVESCORE_WS_MAX_PER_ADDRESS="1")
    for _ in range(5):  # each gone at once: while Redis is asked, or right after
        _, writer = await send_in(node.port, [upgrade_head()])
        writer.transport.abort()

    async def admitted() -> bool:
        writer, head = await upgraded(node.port)
        writer.close()
        return head.startswith(b"HTTP/1.1 101")

    await eventually(admitted, 10, "the address's one slot to be free again")
