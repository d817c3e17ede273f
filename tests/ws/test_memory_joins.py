"""Joins from memory and latest-wins (issue 11), against real edge processes.

A crowd reconnecting to another node with ``since`` is served from that
node's feed (one snapshot read for all of them), and a latest-mode client
that reads slowly during a burst of changes is sent one ``snapshot`` frame
instead of being closed: it stays connected, its seq never goes back, and it
ends with the match's final state.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import orjson
from websockets.frames import Opcode

from edge.cache import PATCHED_FIELDS
from pipeline.relay import Relay
from store.db import Conn, Pool
from tests.factories import Factory
from tests.waiting import eventually
from tests.ws.conftest import EdgeFactory
from tests.ws.helpers import (
    CHANGE_TYPES,
    RawClient,
    WsClient,
    current_seq,
    http_get,
    metric,
    play,
    ws_url,
)

CLIENTS = 30


async def test_a_crowd_resuming_on_another_node_costs_that_node_one_read(
    edges: EdgeFactory, relay: Relay, factory: Factory, conn: Conn
) -> None:
    a, b = edges(2)
    match = await factory.match()
    match_id = match["id"]
    for step in range(1, 6):
        await play(conn, match_id, step)
    crowd = [WsClient(ws_url(a)) for _ in range(CLIENTS)]
    for client in crowd:
        await client.__aenter__()
        await client.request({"action": "subscribe", "matchId": match_id})
    for step in range(6, 11):
        await play(conn, match_id, step)
    seq = await current_seq(conn, match_id)
    await eventually(lambda: all(c.position(match_id) == seq for c in crowd), 10, "the crowd")
    # each client drops out at a different point of its own history
    sinces = [seq - n % 8 for n in range(CLIENTS)]
    for client in crowd:
        await client.aclose()
    reads_before = metric(b, "livescore_ws_snapshot_reads_total")
    movers = [WsClient(ws_url(b)) for _ in range(CLIENTS)]
    try:
        for client in movers:
            await client.__aenter__()
        await asyncio.gather(
            *(
                c.request({"action": "subscribe", "matchId": match_id, "since": since})
                for c, since in zip(movers, sinces, strict=True)
            )
        )
        for step in range(11, 14):
            await play(conn, match_id, step)
        final = await current_seq(conn, match_id)
        await eventually(lambda: all(c.position(match_id) == final for c in movers), 10)
        for client, since in zip(movers, sinces, strict=True):
            assert client.frames[1] == {
                "type": "subscribed",
                "matchId": match_id,
                "seq": since,
                "resumed": True,
            }
            assert client.seqs(match_id) == list(range(since + 1, final + 1))
        assert metric(b, "livescore_ws_snapshot_reads_total") - reads_before == 1
        assert metric(b, 'livescore_ws_joins_total{source="memory"}') == CLIENTS
        # a fresh subscriber on B gets the snapshot from memory: what REST answers
        async with WsClient(ws_url(b)) as fresh:
            reply = await fresh.request({"action": "subscribe", "matchId": match_id})
            _, body = http_get(b, f"/api/matches/{match_id}")
            rest = orjson.loads(body)["data"]
            assert reply["seq"] == final == rest["seq"]
            assert reply["snapshot"] == rest
        assert metric(b, "livescore_ws_snapshot_reads_total") - reads_before == 1
    finally:
        for client in movers:
            await client.aclose()


class SlowReader:
    """A raw WebSocket client that reads a little now and then in a thread, and
    parses whatever it has read into frames."""

    def __init__(self, client: RawClient) -> None:
        self.client = client
        self.data = bytearray(client.buffer)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.fast = threading.Event()
        self.error: BaseException | None = None

    def run(self, chunk: int, every: float) -> None:
        sock = self.client.sock
        sock.settimeout(0.5)
        try:
            while not self.stop.is_set():
                try:
                    got = sock.recv(65536 if self.fast.is_set() else chunk)
                except TimeoutError:
                    continue
                if not got:
                    return
                with self.lock:
                    self.data += got
                if not self.fast.is_set():
                    self.stop.wait(every)
        except OSError as exc:
            self.error = exc

    def frames(self) -> list[tuple[Opcode, bytes]]:
        with self.lock:
            data = bytes(self.data)
        out, i = [], 0
        while i + 2 <= len(data):
            opcode, n = data[i] & 0x0F, data[i + 1] & 0x7F
            i += 2
            if n == 126:
                n, i = int.from_bytes(data[i : i + 2], "big"), i + 2
            elif n == 127:
                n, i = int.from_bytes(data[i : i + 8], "big"), i + 8
            if i + n > len(data):
                break
            out.append((Opcode(opcode), data[i : i + n]))
            i += n
        return out

    def texts(self) -> list[dict[str, Any]]:
        return [orjson.loads(body) for op, body in self.frames() if op is Opcode.TEXT]


async def test_a_slow_latest_mode_reader_gets_a_snapshot_instead_of_a_4008(
    edges: EdgeFactory, relay: Relay, factory: Factory, pool: Pool, conn: Conn
) -> None:
    (node,) = edges(1, LIVESCORE_WS_QUEUE="16")
    match = await factory.match()
    match_id = match["id"]
    raw = RawClient(node.port, rcvbuf=4096)
    await asyncio.to_thread(raw.handshake)
    await asyncio.to_thread(
        raw.send, {"action": "subscribe", "matchId": match_id, "mode": "latest"}
    )
    reader = SlowReader(raw)
    # about one frame a second (each change frame is ~2 KB) against ~20 changes a second
    thread = threading.Thread(target=reader.run, args=(2048, 1.0), daemon=True)
    thread.start()
    control = WsClient(ws_url(node))  # an exact-mode reader keeps up and sees everything
    await control.__aenter__()
    await control.request({"action": "subscribe", "matchId": match_id})
    try:
        loop = asyncio.get_running_loop()
        began = loop.time()
        step = 0
        # ~20 changes a second (a goal is two: its commentary and the score), ~2 KB each
        while loop.time() - began < 8 or metric(node, "livescore_ws_collapsed_total") < 1:
            step += 1
            await play(conn, match_id, step, message_size=1900)
            await asyncio.sleep(0.07)
            assert loop.time() - began < 60, "the slow reader never fell behind"
        final = await current_seq(conn, match_id)
        reader.fast.set()  # now it reads everything

        def caught_up() -> bool:
            seqs = [f["seq"] for f in reader.texts() if f.get("matchId") == match_id]
            return bool(seqs) and seqs[-1] == final

        await eventually(caught_up, 30, "the slow reader to reach the final seq")
        frames = reader.texts()
        assert not [op for op, _ in reader.frames() if op is Opcode.CLOSE]
        assert metric(node, "livescore_ws_dropped_slow_total") == 0
        seqs = [f["seq"] for f in frames if f.get("matchId") == match_id]
        assert seqs == sorted(seqs), "seq went back"
        assert len(seqs) == len(set(seqs)), "a seq came twice"
        snapshots = [f for f in frames if f["type"] == "snapshot"]
        assert snapshots and all(set(f) == {"type", "matchId", "seq", "data"} for f in snapshots)
        assert len(seqs) < final + 1  # changes were collapsed, not all sent
        # its view: the last snapshot, with every change after it applied
        state = dict(snapshots[-1]["data"])
        for f in frames[frames.index(snapshots[-1]) + 1 :]:
            if f["type"] in CHANGE_TYPES and f["matchId"] == match_id:
                for name in PATCHED_FIELDS[f["type"]]:
                    if name in f["data"]:
                        state[name] = f["data"][name]
                state["seq"], state["updatedAt"] = f["seq"], f["ts"]
        _, body = http_get(node, f"/api/matches/{match_id}")
        assert state == orjson.loads(body)["data"]
        await eventually(lambda: control.position(match_id) == final, 10)
        assert control.seqs(match_id) == list(range(1, final + 1))
    finally:
        reader.stop.set()
        raw.close()
        await asyncio.to_thread(thread.join, 5)
        await control.aclose()
