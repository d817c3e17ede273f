"""The floor of bench/fanout.py: what one ``transport.write`` per client costs.

Not a server anyone should run: a hand-rolled WebSocket upgrade on a uvloop
protocol, no framework, no per-client state, and for every message published
on the channel one ready-made frame written to every socket. Any design that
sends each client its own TCP write per message (LiveScore's hub included)
pays at least this much CPU per delivered frame; on loopback most of it is
the kernel's TCP send path (and the receiver's, which runs in the sender's
context).

    python bench/floor_edge.py --port 9000 --redis redis://... --channel PREFIX:changes
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib

import redis.asyncio as aioredis
import uvloop
from harness import LISTEN_BACKLOG, bench_edge_args

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC11B65"
SUBSCRIBED = b'{"type":"subscribed"}'
clients: set[asyncio.Transport] = set()


def text_frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    return bytes((0x81, 126)) + n.to_bytes(2, "big") + payload


class Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.upgraded = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            clients.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        if self.upgraded:  # a client frame (the subscribe): acknowledge it
            if data and data[0] & 0x0F == 1:
                self.transport.write(text_frame(SUBSCRIBED))
            return
        self.buf += data
        if b"\r\n\r\n" not in self.buf:
            return
        head = self.buf.decode("latin-1")
        if head.startswith("GET /health"):
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            )
            self.transport.close()
            return
        key = next(
            line.split(":", 1)[1].strip()
            for line in head.split("\r\n")
            if line.lower().startswith("sec-websocket-key:")
        )
        accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
        self.transport.write(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode()
        )
        self.upgraded = True
        clients.add(self.transport)


async def main(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    await loop.create_server(Connection, "127.0.0.1", args.port, backlog=LISTEN_BACKLOG)
    redis = aioredis.from_url(args.redis)
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(args.channel)
    async for message in pubsub.listen():
        if message.get("type") == "message":
            frame = text_frame(message["data"])
            for transport in clients:
                transport.write(frame)


if __name__ == "__main__":
    uvloop.run(main(bench_edge_args()))
