"""RFC 6455 frames as ``/ws`` receives them from clients: pure functions, no I/O.

``edge/ws_lean.py`` holds each upgraded connection in a protocol of its own
and parses what the client sends with these: ``parse_frame`` takes one frame
off the front of the bytes received so far (or says it needs more),
``Message`` puts fragmented messages together, ``parse_close`` reads a close
frame's payload. Every rule broken raises ``FrameError`` with the close code
the connection is failed with, as the ``websockets`` library would:

* 1002 (protocol error): reserved bits set, an unknown opcode, an unmasked
  client frame, a fragmented or over-125-byte control frame, a continuation
  with no message started or a new message before the last one ended, a
  malformed close payload;
* 1007 (invalid data): a text message or a close reason that is not UTF-8;
* 1009 (too big): a message over the size limit (``wp.MAX_CLIENT_FRAME``),
  refused as soon as the frame header says so (nothing that big is buffered).

``encode`` builds a frame (server frames unmasked; masked ones for tests).
``accept`` checks an upgrade request's headers (RFC 6455 4.2.1, with the
statuses and messages of the ``websockets`` library) and gives the 101.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from typing import Final

OP_CONT: Final = 0x0
OP_TEXT: Final = 0x1
OP_BINARY: Final = 0x2
OP_CLOSE: Final = 0x8
OP_PING: Final = 0x9
OP_PONG: Final = 0xA
DATA_OPCODES: Final = frozenset({OP_CONT, OP_TEXT, OP_BINARY})
CONTROL_OPCODES: Final = frozenset({OP_CLOSE, OP_PING, OP_PONG})

PROTOCOL_ERROR: Final = 1002
INVALID_DATA: Final = 1007
TOO_BIG: Final = 1009
#: A close frame with no payload is read as this code (RFC 6455 7.1.5).
NO_STATUS: Final = 1005
#: The longest header a frame can have: 2 + 8 (64-bit length) + 4 (mask key).
MAX_HEADER: Final = 14


class FrameError(Exception):
    """The client broke RFC 6455: fail the connection with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason


def unmask(payload: bytes | bytearray | memoryview, key: bytes | bytearray | memoryview) -> bytes:
    """XOR ``payload`` with the 4-byte masking ``key`` (RFC 6455 5.3), as one big int."""
    n = len(payload)
    if not n:
        return b""
    keys = bytes(key) * (n // 4 + 1)
    return (int.from_bytes(payload, "little") ^ int.from_bytes(keys[:n], "little")).to_bytes(
        n, "little"
    )


def parse_frame(
    data: bytes | bytearray, start: int, max_size: int
) -> tuple[int, bool, bytes, int] | None:
    """The frame at ``data[start:]``: ``(opcode, fin, payload unmasked, end offset)``,
    or None when its bytes have not all arrived. Raises ``FrameError`` as soon as
    the header breaks a rule (a payload over ``max_size`` before it is received)."""
    available = len(data) - start
    if available < 2:
        return None
    first = data[start]
    second = data[start + 1]
    if first & 0x70:
        raise FrameError(PROTOCOL_ERROR, "reserved bits must be 0")
    opcode = first & 0x0F
    fin = bool(first & 0x80)
    if opcode in CONTROL_OPCODES:
        if not fin:
            raise FrameError(PROTOCOL_ERROR, "fragmented control frame")
    elif opcode not in DATA_OPCODES:
        raise FrameError(PROTOCOL_ERROR, f"invalid opcode: {opcode}")
    if not second & 0x80:
        raise FrameError(PROTOCOL_ERROR, "incorrect masking")
    length = second & 0x7F
    at = start + 2
    if length == 126:
        if available < 4:
            return None
        length = int.from_bytes(data[at : at + 2], "big")
        at += 2
    elif length == 127:
        if available < 10:
            return None
        length = int.from_bytes(data[at : at + 8], "big")
        if length >> 63:
            raise FrameError(PROTOCOL_ERROR, "payload length with the most significant bit set")
        at += 8
    if opcode in CONTROL_OPCODES and length > 125:
        raise FrameError(PROTOCOL_ERROR, "control frame too long")
    if length > max_size:
        raise FrameError(TOO_BIG, f"frame with {length} bytes exceeds limit of {max_size} bytes")
    end = at + 4 + length
    if len(data) < end:
        return None
    return opcode, fin, unmask(data[at + 4 : end], data[at : at + 4]), end


class Message:
    """A data message being put together from its frames (one per connection, made
    only when a message arrives fragmented)."""

    __slots__ = ("opcode", "parts", "size")

    def __init__(self, opcode: int, first: bytes) -> None:
        self.opcode = opcode
        self.parts = [first]
        self.size = len(first)

    def add(self, part: bytes, max_size: int) -> None:
        self.size += len(part)
        if self.size > max_size:
            raise FrameError(
                TOO_BIG, f"message with over {max_size} bytes exceeds limit of {max_size} bytes"
            )
        self.parts.append(part)

    def join(self) -> bytes:
        return b"".join(self.parts)


def data_frame(
    pending: Message | None, opcode: int, fin: bool, payload: bytes, max_size: int
) -> tuple[Message | None, int, bytes | None]:
    """Take one data frame: ``(the message still being put together, its opcode,
    the whole payload when ``fin`` ended it)``. ``pending`` is the message the
    earlier frames started (None: none)."""
    if opcode == OP_CONT:
        if pending is None:
            raise FrameError(PROTOCOL_ERROR, "unexpected continuation frame")
        pending.add(payload, max_size)
        if fin:
            return None, pending.opcode, pending.join()
        return pending, pending.opcode, None
    if pending is not None:
        raise FrameError(PROTOCOL_ERROR, "expected a continuation frame")
    if fin:
        return None, opcode, payload
    return Message(opcode, payload), opcode, None


def decode(opcode: int, payload: bytes) -> str | bytes:
    """A whole message as the handler gets it: text as ``str`` (UTF-8 checked),
    binary as ``bytes``."""
    if opcode != OP_TEXT:
        return payload
    try:
        return payload.decode()
    except UnicodeDecodeError as exc:
        raise FrameError(INVALID_DATA, f"invalid text: {exc.reason}") from None


def _valid_close_code(code: int) -> bool:
    # RFC 6455 7.4.1 and the IANA registry, as websockets checks them
    return code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014) or (
        3000 <= code < 5000
    )


def parse_close(payload: bytes) -> tuple[int, str]:
    """A close frame's ``(code, reason)``; an empty one is ``(1005, "")``."""
    if not payload:
        return NO_STATUS, ""
    if len(payload) == 1:
        raise FrameError(PROTOCOL_ERROR, "close frame too short")
    code = int.from_bytes(payload[:2], "big")
    if not _valid_close_code(code):
        raise FrameError(PROTOCOL_ERROR, f"invalid status code: {code}")
    try:
        reason = payload[2:].decode()
    except UnicodeDecodeError as exc:
        raise FrameError(INVALID_DATA, f"invalid close reason: {exc.reason}") from None
    return code, reason


def close_payload(code: int, reason: str) -> bytes:
    """A close frame's payload; the reason is cut to fit a control frame (123 bytes,
    whole characters)."""
    return code.to_bytes(2, "big") + reason.encode()[:123].decode(errors="ignore").encode()


def encode(opcode: int, payload: bytes, *, fin: bool = True, mask: bytes | None = None) -> bytes:
    """One frame; unmasked (a server's) unless a 4-byte ``mask`` is given (a client's)."""
    n = len(payload)
    head = bytes((0x80 * fin | opcode,))
    flag = 0x80 if mask is not None else 0
    if n < 126:
        head += bytes((flag | n,))
    elif n < 65536:
        head += bytes((flag | 126,)) + n.to_bytes(2, "big")
    else:
        head += bytes((flag | 127,)) + n.to_bytes(8, "big")
    if mask is None:
        return head + payload
    return head + mask + unmask(payload, mask)


def close_frame(code: int, reason: str) -> bytes:
    """A server close frame with ``code`` and ``reason``."""
    return encode(OP_CLOSE, close_payload(code, reason))


# -- the opening handshake -----------------------------------------------------------------

#: RFC 6455 1.3: appended to the client's key before hashing.
GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_FAILED = "Failed to open a WebSocket connection"
_BROWSER = (
    "\n\nYou cannot access a WebSocket server directly with a browser. You need a WebSocket client."
)


class HandshakeError(Exception):
    """Not a valid upgrade: answer with ``status`` (426 or 400) and this message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _tokens(values: Sequence[str]) -> list[str]:
    return [t.strip().lower() for value in values for t in value.split(",") if t.strip()]


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a client's ``Sec-WebSocket-Key``."""
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def accept(
    connection: Sequence[str], upgrade: Sequence[str], keys: Sequence[str], versions: Sequence[str]
) -> bytes:
    """The 101 response head for an upgrade request with these header values (every
    value of each: ``Connection``, ``Upgrade``, ``Sec-WebSocket-Key``,
    ``Sec-WebSocket-Version``). No extension and no subprotocol is offered.
    Raises ``HandshakeError``: 426 when it is no upgrade, 400 for a bad key or
    version."""
    if "upgrade" not in _tokens(connection):
        what = (
            f"invalid Connection header: {', '.join(connection)}"
            if connection
            else ("missing Connection header")
        )
        raise HandshakeError(426, f"{_FAILED}: {what}.{_BROWSER}\n")
    if _tokens(upgrade) != ["websocket"]:
        what = (
            f"invalid Upgrade header: {', '.join(upgrade)}"
            if upgrade
            else ("missing Upgrade header")
        )
        raise HandshakeError(426, f"{_FAILED}: {what}.{_BROWSER}\n")
    if len(keys) != 1:
        what = "missing" if not keys else "more than one"
        raise HandshakeError(400, f"{_FAILED}: {what} Sec-WebSocket-Key header.\n")
    key = keys[0]
    try:
        valid = len(base64.b64decode(key.encode(), validate=True)) == 16
    except binascii.Error:
        valid = False
    if not valid:
        raise HandshakeError(400, f"{_FAILED}: invalid Sec-WebSocket-Key header: {key}.\n")
    if list(versions) != ["13"]:
        what = ", ".join(versions)
        if not versions:
            raise HandshakeError(400, f"{_FAILED}: missing Sec-WebSocket-Version header.\n")
        raise HandshakeError(400, f"{_FAILED}: invalid Sec-WebSocket-Version header: {what}.\n")
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n"
    ).encode()


class RequestHead:
    """An upgrade request's head read from the raw bytes (``read_upgrade_head``): the
    header values by lower-cased name, the (name, value) pairs in order, and the bytes
    that came behind the head (frames the client sent right after it)."""

    __slots__ = ("headers", "pairs", "rest")

    def __init__(
        self, headers: dict[str, list[str]], pairs: list[tuple[str, str]], rest: bytes
    ) -> None:
        self.headers = headers
        self.pairs = pairs
        self.rest = rest

    def values(self, name: str) -> list[str]:
        return self.headers.get(name, [])

    def answer(self) -> bytes | None:
        """The 101 for this upgrade (``accept``), or None when its handshake headers
        are not valid (``accept``'s error, with its status, is then Sanic's way's)."""
        try:
            return accept(
                self.values("connection"),
                self.values("upgrade"),
                self.values("sec-websocket-key"),
                self.values("sec-websocket-version"),
            )
        except HandshakeError:
            return None


#: Headers that give a request a body: such a request is never an upgrade read here.
_BODY_HEADERS = frozenset({"content-length", "transfer-encoding"})


def read_upgrade_head(data: bytes, request_line: str, limit: int) -> RequestHead | None:
    """The head of ``data`` when it is wholly there, its request line is exactly
    ``request_line`` (``"GET /ws HTTP/1.1"``: no query string) and it is read the way
    Sanic reads a head (names lower-cased, values left-stripped, text decoded as UTF-8
    with ``surrogateescape``); None for anything else (a head not yet complete or
    longer than ``limit``, another request line, a line with no colon, a body), which
    then takes Sanic's own way and gets its answer there."""
    end = data.find(b"\r\n\r\n", 0, limit + 4)
    if end < 0 or end >= limit:  # (Sanic answers a head of ``limit`` bytes or more with 413)
        return None
    lines = data[:end].decode(errors="surrogateescape").split("\r\n")
    if lines[0] != request_line:
        return None
    headers: dict[str, list[str]] = {}
    pairs: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            return None
        name = name.lower()
        if name in _BODY_HEADERS:
            return None
        value = value.lstrip()
        pairs.append((name, value))
        values = headers.get(name)
        if values is None:
            headers[name] = [value]
        else:
            values.append(value)
    return RequestHead(headers, pairs, data[end + 4 :])
