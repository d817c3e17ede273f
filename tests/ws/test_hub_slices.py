"""Fan-outs in slices (issue 11: no event-loop stall over 100 ms): a change for
more subscribers than ``fanout_slice`` is written a slice per event-loop pass,
and every delivery rule still holds: each client sees every seq once, in
order, whoever joins, leaves, rejoins or lags while the writes are pending.

In process (real PostgreSQL change log, fake sockets, ``tests.ws.test_hub``'s
clients), with a slice of 2 so a handful of clients spans several passes;
the real-edge suites (``test_memory_joins``, ``test_resume``, ...) run with
the default slice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from websockets.protocol import State

from edge import ws_protocol as wp
from edge.ws_hub import Hub
from store.db import Conn
from tests.factories import Factory
from tests.waiting import eventually
from tests.ws.test_hub import Client, FakeTransport, message, score
from tests.ws.test_hub_memory import db, make_hub  # noqa: F401  (fixtures)

SLICE = 2


@pytest.fixture
def hub(request: pytest.FixtureRequest) -> Hub:
    """``test_hub_memory``'s hub (its stop at the end included), with a slice of 2."""
    make: Callable[..., Hub] = request.getfixturevalue("make_hub")
    return make(fanout_slice=SLICE)


async def crowd(hub: Hub, match_id: int, n: int) -> list[Client]:
    clients = [Client(hub) for _ in range(n)]
    for client in clients:
        await hub.subscribe(client.session, match_id, None)
    return clients


async def crowded(hub: Hub, factory: Factory, n: int = 6) -> tuple[int, list[Client]]:
    """A new match and ``n`` clients subscribed to it."""
    match = await factory.match()
    return int(match["id"]), await crowd(hub, match["id"], n)


async def drained(hub: Hub) -> None:
    await eventually(lambda: not hub.outbox, 5, "the pending fan-outs to be written")


def exactly_once(client: Client, match_id: int, first: int, last: int) -> bool:
    return client.seqs(match_id) == list(range(first, last + 1))


async def test_a_fan_out_wider_than_a_slice_is_written_a_slice_per_pass_in_order(
    hub: Hub, factory: Factory, conn: Conn
) -> None:
    match_id, clients = await crowded(hub, factory, 7)
    changes = [await score(conn, match_id, n) for n in range(1, 6)]
    for change in changes:
        hub.on_message(message(change))
    # nothing yielded to the loop yet: at most one slice of the first change is out
    assert sum(1 for c in clients if c.seqs(match_id)) == 0
    assert hub.feeds[match_id].last == 5  # the feed (and its memory) moved on at once
    await asyncio.sleep(0)
    assert sum(1 for c in clients if c.seqs(match_id)) == SLICE
    await drained(hub)
    for client in clients:
        assert exactly_once(client, match_id, 1, 5)
    assert hub.feeds[match_id].queued == 0


async def test_a_narrow_fan_out_is_written_at_once(hub: Hub, factory: Factory, conn: Conn) -> None:
    match = await factory.match()
    clients = await crowd(hub, match["id"], SLICE)
    hub.on_message(message(await score(conn, match["id"], 1)))
    assert all(c.seqs(match["id"]) == [1] for c in clients)
    assert not hub.outbox


async def test_a_join_while_a_fan_out_is_pending_gets_each_seq_once(
    hub: Hub, factory: Factory, conn: Conn
) -> None:
    match_id, clients = await crowded(hub, factory)
    changes = [await score(conn, match_id, n) for n in (1, 2, 3)]
    later = await score(conn, match_id, 4)
    for change in changes:
        hub.on_message(message(change))
    assert hub.outbox  # still being written
    resumer, fresh = Client(hub), Client(hub)
    await hub.subscribe(resumer.session, match_id, 1)
    await hub.subscribe(fresh.session, match_id, None)
    hub.on_message(message(later))
    await drained(hub)
    for client in clients:
        assert exactly_once(client, match_id, 1, 4)
    assert resumer.start(match_id) == 1
    assert exactly_once(resumer, match_id, 2, 4)
    assert fresh.start(match_id) == 3
    assert exactly_once(fresh, match_id, 4, 4)


async def test_a_client_that_leaves_and_rejoins_mid_fan_out_never_gets_a_seq_twice(
    hub: Hub, factory: Factory, conn: Conn
) -> None:
    match_id, clients = await crowded(hub, factory)
    changes = [await score(conn, match_id, n) for n in (1, 2, 3, 4)]
    for change in changes[:2]:
        hub.on_message(message(change))
    await asyncio.sleep(0)  # one slice out: the others still wait for seq 1 and 2
    waiting = [c for c in clients if not c.seqs(match_id)]
    assert waiting
    mover, leaver = waiting[0], waiting[-1]
    hub.unsubscribe(mover.session, match_id)
    hub.unsubscribe(leaver.session, match_id)
    # the mover rejoins at once, resuming from what it had: nothing (seq 0)
    rejoin = asyncio.create_task(hub.subscribe(mover.session, match_id, 0))
    hub.on_message(message(changes[2]))
    await rejoin
    await drained(hub)
    hub.on_message(message(changes[3]))
    await drained(hub)
    assert exactly_once(mover, match_id, 1, 4)
    assert leaver.seqs(match_id) == []  # nothing after it left
    for client in clients:
        if client not in (mover, leaver):
            assert exactly_once(client, match_id, 1, 4)


async def test_a_client_closed_mid_fan_out_is_written_nothing_more(
    hub: Hub, factory: Factory, conn: Conn
) -> None:
    match_id, clients = await crowded(hub, factory)
    hub.on_message(message(await score(conn, match_id, 1)))
    unwritten = [c for c in clients if not c.seqs(match_id)]
    unwritten[0].session.close(4000, "gone")
    hub.detach(unwritten[0].session)
    await drained(hub)
    assert unwritten[0].seqs(match_id) == []
    assert sum(1 for c in clients if c.seqs(match_id) == [1]) == 5


async def test_a_reset_writes_the_pending_fan_outs_before_the_fresh_snapshot(
    hub: Hub, factory: Factory, conn: Conn
) -> None:
    match_id, clients = await crowded(hub, factory)
    hub.on_message(message(await score(conn, match_id, 1)))
    # the pump's next pass never comes: the fan-out is still pending when the reset runs
    assert hub._pump_handle is not None
    hub._pump_handle.cancel()
    hub._pump_handle = None
    await hub._reset(hub.feeds[match_id])
    assert not hub.outbox
    for client in clients:
        kinds = [(f["type"], f.get("seq")) for f in client.frames]
        assert kinds == [
            ("subscribed", 0), ("score:update", 1), ("error", None), ("subscribed", 1),
        ]  # fmt: skip


async def test_a_lagging_latest_mode_client_gets_its_snapshot_only_after_the_pending_writes(
    hub: Hub, factory: Factory, conn: Conn
) -> None:
    match = await factory.match()
    match_id = match["id"]
    slow = Client(hub, queue=4)
    await hub.subscribe(slow.session, match_id, None, latest=True)
    others = await crowd(hub, match_id, 5)
    slow.transport.buffered = 1  # its socket stops draining: every frame stays queued
    for n in range(1, 9):
        hub.on_message(message(await score(conn, match_id, n)))
    await drained(hub)
    feed = hub.feeds[match_id]
    assert slow.session in feed.lagging
    slow.transport.buffered = 0  # it reads again
    await eventually(lambda: slow.session in feed.subscribers, 5, "the collapsed snapshot")
    seqs = [f["seq"] for f in slow.frames if f["type"] in ("score", "snapshot")]
    assert seqs == sorted(set(seqs)) and seqs[-1] == 8  # never back, never twice
    assert slow.frames[-1]["type"] == "snapshot"
    for client in others:
        assert exactly_once(client, match_id, 1, 8)


class Kernel(FakeTransport):
    """A transport whose socket takes ``room`` more bytes: what does not fit stays
    queued in the transport, and so does everything written after it."""

    def __init__(self, room: int) -> None:
        super().__init__()
        self.room = room

    def write(self, data: bytes) -> None:
        self.data += data
        if self.buffered:
            self.buffered += len(data)
            return
        taken = min(self.room, len(data))
        self.room -= taken
        self.buffered = len(data) - taken


@pytest.mark.parametrize("room", [0, 40, 300, 100_000])
@pytest.mark.parametrize("queued_before", [False, True])
async def test_a_replay_sent_in_one_write_is_booked_as_if_sent_frame_by_frame(
    hub: Hub, room: int, queued_before: bool
) -> None:
    """A resume's frames go out in one write; the send queue (counted in frames,
    ``LIVESCORE_WS_QUEUE``) still sees each frame, so a client that does not read
    its replay is warned and dropped exactly as with one write per frame (the
    warning then follows the replay instead of standing inside it)."""
    frames = [wp.text_frame(b'{"seq":%d,"pad":"%s"}' % (n, b"x" * 9 * n)) for n in range(1, 9)]
    one = Client(hub, queue=6, transport=Kernel(room))
    each = Client(hub, queue=6, transport=Kernel(room))
    if queued_before:
        for client in (one, each):
            client.transport.room = 0
            client.session.send(frames[0])
            client.transport.room = room
    sent_one = one.session.send_many(frames)
    sent_each = True
    for frame in frames:
        if not each.session.send(frame):
            sent_each = False
            break
    assert sent_one == sent_each
    assert one.session.closed == each.session.closed
    assert one.closes == each.closes
    assert one.session.queued_now() == each.session.queued_now()
    assert one.session.warned == each.session.warned
    if not one.session.closed:

        def seqs(client: Client) -> list[int]:
            return [f["seq"] for f in client.frames if "seq" in f]

        assert seqs(one) == seqs(each)


class Refusing(FakeTransport):
    """A socket closed before its ``connection_lost`` reached the hub: uvloop's
    write raises (``framework.WRITE_AFTER_CLOSE``)."""

    def write(self, data: bytes) -> None:
        raise RuntimeError("unable to perform operation on <TCPTransport closed=True>")


@pytest.mark.parametrize("how", ["closed", "not_open", "write_raises"])
@pytest.mark.parametrize("count", [1, 3])
async def test_send_many_writes_nothing_to_a_client_that_is_gone_and_marks_it_dead(
    hub: Hub, how: str, count: int
) -> None:
    """``send_many`` and ``send`` share one guard: a session already closed, one
    whose WebSocket left OPEN, or one whose socket refuses the write gets nothing,
    the call answers False, and the session is closed (the hub forgets it)."""
    client = Client(hub, transport=Refusing() if how == "write_raises" else None)
    if how == "closed":
        client.session.left_open()  # (what its connection tells it on a close frame)
    elif how == "not_open":
        client.session.proto = NotOpen()
    frames = [wp.text_frame(b'{"seq":%d}' % n) for n in range(count)]
    assert client.session.send_many(frames) is False
    assert client.session.closed
    assert client.transport.data == b""
    await asyncio.sleep(0)  # the hub's detach runs on the next pass
    assert client.session not in hub.sessions


class NotOpen:
    state = State.CLOSING
