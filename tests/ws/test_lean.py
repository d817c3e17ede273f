"""The lean ``/ws`` connection (``edge/ws_lean.py``) on a real edge node, through bare
sockets: RFC 6455 frame handling (fragments, control frames, limits, UTF-8, the
close handshake), message order behind a subscribe, bytes that came with the
handshake, the shutdown's 1001, and no task held by an idle socket."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from edge import ws_frames as wf
from edge import ws_protocol as wp
from edge.ws_lean import BACKLOG_PAUSE
from tests.edge.conftest import EdgeNode
from tests.factories import Factory
from tests.waiting import eventually
from tests.ws.conftest import EdgeFactory, raw_upgrade
from tests.ws.helpers import metric

MASK = b"\x0a\x0b\x0c\x0d"


def client(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    return wf.encode(opcode, payload, fin=fin, mask=MASK)


def action(payload: dict[str, Any]) -> bytes:
    return client(wf.OP_TEXT, orjson.dumps(payload))


class Raw:
    """A bare-socket WebSocket client: writes whatever bytes it is given, reads frames."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int, *, behind: bytes = b"") -> Raw:
        """Connected, past the 101; ``behind`` is written in the same write as the request."""
        reader, writer = await raw_upgrade(port, behind=behind)
        raw = cls(reader, writer)
        assert (await raw.json())["type"] == "welcome"
        return raw

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def frame(self) -> tuple[int, bytes]:
        async with asyncio.timeout(10):
            first, second = await self.reader.readexactly(2)
            assert not second & 0x80, "server frames are never masked"
            length = second & 0x7F
            if length == 126:
                length = int.from_bytes(await self.reader.readexactly(2), "big")
            elif length == 127:
                length = int.from_bytes(await self.reader.readexactly(8), "big")
            return first & 0x0F, await self.reader.readexactly(length)

    async def json(self) -> dict[str, Any]:
        opcode, payload = await self.frame()
        assert opcode == wf.OP_TEXT, (opcode, payload)
        body: dict[str, Any] = orjson.loads(payload)
        return body

    async def closed_with(self) -> tuple[int, str]:
        """The close frame's code and reason (frames before it skipped); then the
        node ends the TCP connection."""
        while True:
            opcode, payload = await self.frame()
            if opcode == wf.OP_CLOSE:
                break
        code, reason = wf.parse_close(payload)
        await self.eof()
        return code, reason

    async def eof(self) -> None:
        """The node closed the connection (after its close frame)."""
        async with asyncio.timeout(10):
            assert await self.reader.read() == b""
        self.writer.close()
        await self.writer.wait_closed()

    def abort(self) -> None:
        self.writer.transport.abort()


async def test_frames_sent_with_the_handshake_are_read(module_edge: EdgeNode) -> None:
    raw = await Raw.open(module_edge.port, behind=action({"action": "ping"}))
    assert await raw.json() == {"type": "pong"}
    raw.abort()


async def test_a_fragmented_message_with_a_ping_between_its_fragments(
    module_edge: EdgeNode,
) -> None:
    raw = await Raw.open(module_edge.port)
    text = b'{"action": "ping"}'
    await raw.send(
        client(wf.OP_TEXT, text[:5], fin=False)
        + client(wf.OP_PING, b"hello")
        + client(wf.OP_CONT, text[5:11], fin=False)
        + client(wf.OP_CONT, text[11:])
    )
    assert await raw.frame() == (wf.OP_PONG, b"hello")
    assert await raw.json() == {"type": "pong"}
    raw.abort()


async def test_a_message_dribbled_one_byte_at_a_time(module_edge: EdgeNode) -> None:
    raw = await Raw.open(module_edge.port)
    for byte in action({"action": "ping"}):
        await raw.send(bytes((byte,)))
        await asyncio.sleep(0.005)
    assert await raw.json() == {"type": "pong"}
    raw.abort()


async def test_actions_are_answered_in_order_behind_a_subscribe(
    module_edge: EdgeNode, factory: Factory
) -> None:
    """A subscribe runs as a task (it may read PostgreSQL); what the client sent right
    behind it waits for it, in order."""
    match = await factory.match()
    raw = await Raw.open(module_edge.port)
    await raw.send(
        action({"action": "subscribe", "matchId": match["id"]})
        + action({"action": "ping"})
        + action({"action": "unsubscribe", "matchId": match["id"]})
        + action({"action": "subscribe", "matchId": match["id"]})
        + action({"action": "ping"})
    )
    types = [(await raw.json())["type"] for _ in range(5)]
    assert types == ["subscribed", "pong", "unsubscribed", "subscribed", "pong"]
    raw.abort()


async def test_a_backlog_behind_a_subscribe_pauses_reading_and_loses_nothing(
    module_edge: EdgeNode, factory: Factory
) -> None:
    """More messages behind a running subscribe than the backlog holds before reading
    pauses (``BACKLOG_PAUSE``): every one is answered, in order."""
    match = await factory.match()
    raw = await Raw.open(module_edge.port)
    count = 3 * BACKLOG_PAUSE
    await raw.send(
        action({"action": "subscribe", "matchId": match["id"]}) + action({"action": "ping"}) * count
    )
    assert (await raw.json())["type"] == "subscribed"
    assert [(await raw.json())["type"] for _ in range(count)] == ["pong"] * count
    raw.abort()


async def test_a_binary_message_is_an_error_frame_not_a_close(module_edge: EdgeNode) -> None:
    raw = await Raw.open(module_edge.port)
    await raw.send(client(wf.OP_BINARY, b"\x00\x01"))
    assert (await raw.json())["code"] == "binary_frame"
    raw.abort()


BROKEN = [
    ("unmasked", wf.encode(wf.OP_TEXT, b'{"action": "ping"}'), 1002),
    ("invalid UTF-8", client(wf.OP_TEXT, b'{"action": "\xff"}'), 1007),
    ("continuation first", client(wf.OP_CONT, b"x"), 1002),
    ("reserved bit", bytes((0xC1,)) + client(wf.OP_TEXT, b"{}")[1:], 1002),
    (
        "fragments over the limit",
        client(wf.OP_TEXT, b"x" * 3000, fin=False) + client(wf.OP_CONT, b"x" * 3000),
        1009,
    ),
    ("bad close code", client(wf.OP_CLOSE, (1005).to_bytes(2, "big")), 1002),
]


@pytest.mark.parametrize(("why", "data", "code"), BROKEN, ids=[b[0] for b in BROKEN])
async def test_a_protocol_violation_fails_the_connection_with_its_code(
    module_edge: EdgeNode, why: str, data: bytes, code: int
) -> None:
    raw = await Raw.open(module_edge.port)
    await raw.send(data)
    assert (await raw.closed_with())[0] == code


async def test_the_clients_close_frame_is_answered_with_the_same_and_the_tcp_closes(
    module_edge: EdgeNode,
) -> None:
    raw = await Raw.open(module_edge.port)
    await raw.send(client(wf.OP_CLOSE, wf.close_payload(4001, "bye")))
    assert await raw.closed_with() == (4001, "bye")


async def test_a_flooding_client_reads_4029_while_it_keeps_sending(module_edge: EdgeNode) -> None:
    """The lingering close: the close frame, then what the client still sends is
    read and dropped until it answers the close."""
    raw = await Raw.open(module_edge.port)
    await raw.send(action({"action": "ping"}) * 400)
    while (frame := await raw.frame())[0] != wf.OP_CLOSE:
        pass
    assert wf.parse_close(frame[1])[0] == wp.CLOSE_FLOOD
    await raw.send(action({"action": "ping"}) * 20)  # still read, no reset
    await raw.send(client(wf.OP_CLOSE, wf.close_payload(4029, "")))
    await raw.eof()


async def test_idle_connections_hold_no_task(edges: EdgeFactory, factory: Factory) -> None:
    """200 clients subscribed and idle: the node's task count is where it was before
    they came (no task or coroutine stack per socket), and comes back after they go."""
    (node,) = edges(1)
    match = await factory.match()
    baseline = metric(node, "livescore_event_loop_tasks")
    clients: list[Raw] = []
    for _ in range(4):
        batch = await asyncio.gather(*(Raw.open(node.port) for _ in range(50)))
        for raw in batch:
            await raw.send(action({"action": "subscribe", "matchId": match["id"]}))
        for raw in batch:
            assert (await raw.json())["type"] == "subscribed"
        clients += batch
    assert metric(node, "livescore_ws_connections") == 200
    assert metric(node, "livescore_event_loop_tasks") <= baseline + 2
    for raw in clients:
        raw.abort()
    await eventually(lambda: metric(node, "livescore_ws_connections") == 0, 20, "every detach")
    assert metric(node, "livescore_event_loop_tasks") <= baseline + 2


async def test_a_node_shutting_down_closes_its_sockets_with_1001(edges: EdgeFactory) -> None:
    (node,) = edges(1)
    raw = await Raw.open(node.port)
    stopping = asyncio.create_task(asyncio.to_thread(node.stop))
    try:
        while (frame := await raw.frame())[0] != wf.OP_CLOSE:
            pass
        assert wf.parse_close(frame[1])[0] == wp.CLOSE_GOING_AWAY
        await raw.send(client(wf.OP_CLOSE, wf.close_payload(1001, "")))
        await raw.eof()
    finally:
        await stopping
    assert "Traceback" not in node.log_text()
