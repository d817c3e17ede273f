"""RFC 6455 client frames as ``/ws`` parses them (``edge/ws_frames.py``), and the lean
connection's reading of a byte stream cut anywhere (``edge/ws_lean.py``), in-process.
The same rules on a live node are in ``tests/ws/test_lean.py``."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.datastructures import Headers
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from edge import ws_frames as wf
from edge import ws_protocol as wp
from edge.ws_client import PING_DATA
from edge.ws_lean import Connection

MAX = wp.MAX_CLIENT_FRAME
MASK = b"\x01\x02\x03\x04"


def client(opcode: int, payload: bytes, *, fin: bool = True, mask: bytes = MASK) -> bytes:
    return wf.encode(opcode, payload, fin=fin, mask=mask)


# -- one frame -----------------------------------------------------------------------------


@given(
    opcode=st.sampled_from([wf.OP_CONT, wf.OP_TEXT, wf.OP_BINARY]),
    fin=st.booleans(),
    payload=st.binary(max_size=MAX),
    mask=st.binary(min_size=4, max_size=4),
)
def test_a_frame_parses_back_to_what_was_encoded(
    opcode: int, fin: bool, payload: bytes, mask: bytes
) -> None:
    data = wf.encode(opcode, payload, fin=fin, mask=mask)
    assert wf.parse_frame(data, 0, MAX) == (opcode, fin, payload, len(data))
    for cut in range(len(data)):  # any prefix: not there yet
        assert wf.parse_frame(data[:cut], 0, MAX) is None


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 4095, 4096, 65535, 65536])
def test_frames_match_the_websockets_library(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    theirs = Frame(Opcode.BINARY, payload).serialize(mask=True, extensions=[])
    assert wf.parse_frame(theirs, 0, 1 << 20) == (wf.OP_BINARY, True, payload, len(theirs))
    assert wf.encode(wf.OP_BINARY, payload) == Frame(Opcode.BINARY, payload).serialize(
        mask=False, extensions=[]
    )


BROKEN: list[tuple[str, bytes, int]] = [
    ("reserved bit", bytes((0x80 | 0x40 | wf.OP_TEXT,)) + client(wf.OP_TEXT, b"x")[1:], 1002),
    ("unknown opcode", client(0x3, b"x"), 1002),
    ("unmasked", wf.encode(wf.OP_TEXT, b"{}"), 1002),
    ("fragmented ping", client(wf.OP_PING, b"x", fin=False), 1002),
    ("long ping", client(wf.OP_PING, b"x" * 126), 1002),
    ("over the limit", client(wf.OP_TEXT, b"x" * (MAX + 1)), 1009),
    ("63-bit length", bytes((0x81, 0xFF)) + (1 << 63).to_bytes(8, "big") + MASK, 1002),
]


@pytest.mark.parametrize(("why", "data", "code"), BROKEN, ids=[b[0] for b in BROKEN])
def test_a_broken_frame_fails_with_its_close_code(why: str, data: bytes, code: int) -> None:
    with pytest.raises(wf.FrameError) as raised:
        wf.parse_frame(data, 0, MAX)
    assert raised.value.code == code


def test_an_oversized_frame_is_refused_from_its_header_alone() -> None:
    head = client(wf.OP_TEXT, b"x" * 70000)[:14]  # nothing of the payload has come
    with pytest.raises(wf.FrameError) as raised:
        wf.parse_frame(head, 0, MAX)
    assert raised.value.code == wf.TOO_BIG


# -- messages ------------------------------------------------------------------------------


def test_continuations_without_a_message_or_a_message_inside_one_are_protocol_errors() -> None:
    with pytest.raises(wf.FrameError, match="unexpected continuation"):
        wf.data_frame(None, wf.OP_CONT, True, b"x", MAX)
    pending, _, whole = wf.data_frame(None, wf.OP_TEXT, False, b"x", MAX)
    assert whole is None
    with pytest.raises(wf.FrameError, match="expected a continuation"):
        wf.data_frame(pending, wf.OP_TEXT, True, b"y", MAX)


def test_a_fragmented_message_over_the_limit_is_too_big() -> None:
    pending, _, _ = wf.data_frame(None, wf.OP_TEXT, False, b"x" * MAX, MAX)
    with pytest.raises(wf.FrameError) as raised:
        wf.data_frame(pending, wf.OP_CONT, True, b"y", MAX)
    assert raised.value.code == wf.TOO_BIG


def test_text_must_be_utf8_and_binary_stays_bytes() -> None:
    assert wf.decode(wf.OP_TEXT, "é".encode()) == "é"
    assert wf.decode(wf.OP_BINARY, b"\xff") == b"\xff"
    with pytest.raises(wf.FrameError) as raised:
        wf.decode(wf.OP_TEXT, b"\xff")
    assert raised.value.code == wf.INVALID_DATA


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"", (1005, "")),
        ((1000).to_bytes(2, "big"), (1000, "")),
        ((4001).to_bytes(2, "big") + b"bye", (4001, "bye")),
        (b"\x03", 1002),
        ((1005).to_bytes(2, "big"), 1002),
        ((999).to_bytes(2, "big"), 1002),
        ((5000).to_bytes(2, "big"), 1002),
        ((1000).to_bytes(2, "big") + b"\xff", 1007),
    ],
)
def test_close_payloads(payload: bytes, expected: tuple[int, str] | int) -> None:
    if isinstance(expected, tuple):
        assert wf.parse_close(payload) == expected
        return
    with pytest.raises(wf.FrameError) as raised:
        wf.parse_close(payload)
    assert raised.value.code == expected


def test_a_close_reason_is_cut_to_fit_a_control_frame_on_a_character_boundary() -> None:
    frame = wf.close_frame(4029, "é" * 100)
    assert frame[0] == 0x80 | wf.OP_CLOSE and frame[1] == len(frame) - 2 <= 125
    assert wf.parse_close(frame[2:]) == (4029, "é" * 61)


# -- the opening handshake -----------------------------------------------------------------

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
UPGRADE = {
    "Connection": "keep-alive, Upgrade",
    "Upgrade": "WebSocket",
    "Sec-WebSocket-Key": KEY,
    "Sec-WebSocket-Version": "13",
}


def ours(headers: dict[str, str]) -> bytes:
    return wf.accept(
        *(
            [headers[name]] if name in headers else []
            for name in ("Connection", "Upgrade", "Sec-WebSocket-Key", "Sec-WebSocket-Version")
        )
    )


def test_the_accept_key_is_rfc_6455s_example() -> None:
    assert wf.accept_key(KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    head = ours(UPGRADE)
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n" in head


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"Connection": None},
        {"Connection": "keep-alive"},
        {"Upgrade": None},
        {"Upgrade": "h2c"},
        {"Sec-WebSocket-Key": None},
        {"Sec-WebSocket-Key": "abc"},
        {"Sec-WebSocket-Key": "c2hvcnQ="},
        {"Sec-WebSocket-Version": None},
        {"Sec-WebSocket-Version": "12"},
    ],
)
def test_the_handshake_answers_as_the_websockets_library_does(change: dict[str, Any]) -> None:
    headers = {k: v for k, v in {**UPGRADE, **change}.items() if v is not None}
    theirs = ServerProtocol().accept(Request("/ws", Headers({"Host": "x", **headers})))
    if theirs.status_code == 101:
        assert f"Sec-WebSocket-Accept: {theirs.headers['Sec-WebSocket-Accept']}".encode() in ours(
            headers
        )
        return
    with pytest.raises(wf.HandshakeError) as refused:
        ours(headers)
    assert refused.value.status == theirs.status_code
    assert str(refused.value).split(":")[1] == theirs.body.decode().split(":")[1]


# -- a stream cut anywhere, through the lean connection ------------------------------------


class Recorder(Connection):
    """A ``Connection`` that records the messages it would act on."""

    __slots__ = ("got",)

    def __init__(self) -> None:
        super().__init__(None, None, None, "test")  # type: ignore[arg-type]
        self.got: list[str | bytes] = []

    def _received(self, message: str | bytes) -> None:
        self.got.append(message)


def stream(messages: list[tuple[int, bytes, list[int]]]) -> bytes:
    """Each message cut into fragments at the given offsets, a pong between fragments."""
    data = b""
    for opcode, payload, cuts in messages:
        bounds = sorted({0, len(payload), *(c % (len(payload) + 1) for c in cuts)})
        parts = [payload[a:b] for a, b in itertools.pairwise(bounds)] or [b""]
        for i, part in enumerate(parts):
            data += client(opcode if i == 0 else wf.OP_CONT, part, fin=i == len(parts) - 1)
            data += client(wf.OP_PONG, b"between")  # control frames may come mid-message
    return data


CUTS = st.lists(st.integers(0, 60), max_size=3)
MESSAGES = st.lists(
    st.one_of(
        st.tuples(st.just(wf.OP_TEXT), st.text(max_size=60).map(str.encode), CUTS),
        st.tuples(st.just(wf.OP_BINARY), st.binary(max_size=60), CUTS),
    ),
    min_size=1,
    max_size=4,
)


def expected(messages: list[tuple[int, bytes, list[int]]]) -> list[Any]:
    return [p.decode() if op == wf.OP_TEXT else p for op, p, _ in messages]


@settings(max_examples=60, deadline=None)
@given(messages=MESSAGES)
def test_a_stream_split_at_every_byte_gives_the_same_messages(
    messages: list[tuple[int, bytes, list[int]]],
) -> None:
    data = stream(messages)
    for cut in range(len(data) + 1):
        connection = Recorder()
        connection.data_received(data[:cut])
        connection.data_received(data[cut:])
        assert connection.got == expected(messages), cut
        assert connection.buffer is None and connection.message is None


@settings(max_examples=20, deadline=None)
@given(messages=MESSAGES)
def test_a_stream_fed_one_byte_at_a_time_gives_the_same_messages(
    messages: list[tuple[int, bytes, list[int]]],
) -> None:
    data = stream(messages)
    connection = Recorder()
    for i in range(len(data)):
        connection.data_received(data[i : i + 1])
    assert connection.got == expected(messages)
    assert connection.buffer is None


def test_an_idle_connection_holds_no_buffer_between_frames() -> None:
    connection = Recorder()
    data = client(wf.OP_TEXT, b'{"action": "ping"}')
    connection.data_received(data[:5])
    assert connection.buffer == data[:5]
    connection.data_received(data[5:])
    assert connection.buffer is None and connection.got == ['{"action": "ping"}']


async def test_the_pong_to_the_hubs_ping_resolves_its_future() -> None:
    """``Session.keepalive`` leaves its ping's future in the connection
    (``pings[PING_DATA] = future``); the pong carrying those bytes resolves it,
    another pong does not."""
    connection = Recorder()
    pong: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    connection[PING_DATA] = pong
    connection.data_received(client(wf.OP_PONG, b"something else"))
    assert not pong.done()
    connection.data_received(client(wf.OP_PONG, PING_DATA))
    assert pong.done() and connection.pong is None


# -- the upgrade request's head, as the door reads it (wf.read_upgrade_head) -----------------

LINE = "GET /ws HTTP/1.1"
HEAD = (
    b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def test_a_whole_head_is_read_as_sanic_reads_it() -> None:
    data = HEAD.replace(b"Host: x", b"HOST:   x \r\nX-Forwarded-For: a\r\nx-forwarded-for: b")
    head = wf.read_upgrade_head(data + b"\x81\x80frame", LINE, 8192)

    assert head is not None
    assert head.values("host") == ["x "]  # lower-cased names, values left-stripped only
    assert head.values("x-forwarded-for") == ["a", "b"]
    assert head.values("origin") == []
    assert head.pairs[0] == ("host", "x ")
    assert head.rest == b"\x81\x80frame"  # what came behind the head


@pytest.mark.parametrize(
    ("data", "limit"),
    [
        (HEAD[:-2], 8192),
        (HEAD.replace(b"GET /ws ", b"GET /ws?token=x "), 8192),
        (HEAD.replace(b"GET /ws ", b"GET /wsx "), 8192),
        (HEAD.replace(b"HTTP/1.1", b"HTTP/1.0", 1), 8192),
        (HEAD.replace(b"Host: x", b"no colon here"), 8192),
        (HEAD.replace(b"Host: x", b"Content-Length: 0"), 8192),
        (HEAD.replace(b"Host: x", b"Transfer-Encoding: chunked"), 8192),
        (HEAD, len(HEAD) - 4),
    ],
    ids=[
        "not all there",
        "query string",
        "another path",
        "HTTP/1.0",
        "a line with no colon",
        "a body",
        "a chunked body",
        "longer than Sanic reads",
    ],
)
def test_anything_else_is_left_to_sanic(data: bytes, limit: int) -> None:
    assert wf.read_upgrade_head(data, LINE, limit) is None


def test_a_head_just_under_the_limit_is_read() -> None:
    assert wf.read_upgrade_head(HEAD, LINE, len(HEAD) - 3) is not None
