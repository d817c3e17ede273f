"""The hub's delivery rules, in process: real PostgreSQL change log, fake sockets.

Each fake session records the frames written to its transport, so a test
can check the exact sequence a client would see: in order, no gap, no
duplicate, whatever the bus does (drops, duplicates, jumps, resubscribes).
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.protocol import State

from edge import ws_hub as hub_module
from edge import ws_protocol as wp
from edge.framework import heard_within, tcp_socket
from edge.ws_client import MATCH, PING_DATA, PING_FRAME, Session
from edge.ws_hub import Hub
from livescore import supervise
from livescore.model import MatchPatch
from livescore.supervise import Loops
from store.change_codec import decode, encode
from store.db import Conn, Pool
from store.writes import Change, apply_change
from tests.factories import Factory
from tests.waiting import eventually


class FakeTransport:
    def __init__(self) -> None:
        self.data = bytearray()
        self.buffered = 0

    def write(self, data: bytes) -> None:
        self.data += data
        if self.buffered:
            self.buffered += len(data)

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def is_closing(self) -> bool:
        return False


class FakeProto:
    state = State.OPEN


def unframe(data: bytes) -> list[dict[str, Any]]:
    """Split a byte stream of unmasked text frames into parsed payloads."""
    out, i = [], 0
    while i < len(data):
        assert data[i] == 0x81, "a final, unmasked text frame"
        n = data[i + 1]
        i += 2
        if n == 126:
            n, i = int.from_bytes(data[i : i + 2], "big"), i + 2
        elif n == 127:
            n, i = int.from_bytes(data[i : i + 8], "big"), i + 8
        out.append(orjson.loads(data[i : i + n]))
        i += n
    return out


class TcpTransport(FakeTransport):
    """Records frames like ``FakeTransport`` and also sends them through a real
    TCP socket, whose kernel the keepalive asks whether the peer ACKed."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self.sock = sock

    def write(self, data: bytes) -> None:
        super().write(data)
        self.sock.sendall(data)

    def get_extra_info(self, name: str) -> Any:
        return self.sock if name == "socket" else None


@pytest.fixture
def tcp_pair() -> Iterator[Callable[[], socket.socket]]:
    """``tcp_pair()``: the server end of a fresh loopback TCP connection (the
    client end is kept open, never read: its kernel still ACKs)."""
    held: list[socket.socket] = []
    listener = socket.create_server(("127.0.0.1", 0))
    held.append(listener)

    def make() -> socket.socket:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
        held.extend((client, server))
        return server

    yield make
    for sock in held:
        sock.close()


class Client:
    def __init__(self, hub: Hub, queue: int = 64, transport: FakeTransport | None = None) -> None:
        self.transport = transport or FakeTransport()
        self.closes: list[tuple[int, str]] = []
        self.session = Session(
            self.transport, FakeProto(), self._close, queue_limit=queue, ident="fake"
        )
        hub.attach(self.session)

    def _close(self, code: int = 1000, reason: str = "") -> None:
        self.closes.append((code, reason))

    @property
    def frames(self) -> list[dict[str, Any]]:
        return unframe(bytes(self.transport.data))

    def seqs(self, match_id: int) -> list[int]:
        return [
            f["seq"]
            for f in self.frames
            if f.get("matchId") == match_id and f["type"] not in ("subscribed", "error")
        ]

    def start(self, match_id: int) -> int:
        """Where the client's view of a match starts: its (last) subscribed frame's seq."""
        return [f for f in self.frames if f["type"] == "subscribed"][-1]["seq"]


@pytest.fixture
async def hub(pool: Pool) -> Any:
    hub = Hub(pool.connection, node="test", max_subscriptions=10)
    yield hub
    await hub.stop()


def message(change: Change) -> Change:
    return decode(encode(change))


async def score(conn: Conn, match_id: int, home: int) -> Change:
    changes = await apply_change(
        conn, match_id, MatchPatch(source="t", home_score=home, away_score=0)
    )
    assert len(changes) == 1
    return changes[0]


def answer_ping(client: Client) -> None:
    """Answer the client's outstanding ping, as Sanic does when the pong frame arrives."""
    pong = client.session.pings.get(PING_DATA) if client.session.pings else None
    if pong is not None and not pong.done():
        pong.set_result(None)


async def settle(hub: Hub) -> None:
    """Let fills and deferred removals finish."""
    await asyncio.sleep(0)  # removals are deferred with call_soon and fills start as tasks
    await eventually(
        lambda: all(f.fill_task is None for f in hub.feeds.values()), 2, "the fills to finish"
    )


async def test_live_changes_are_delivered_once_in_order(
    hub: Hub, factory: Factory, conn: Conn
) -> None:
    match = await factory.match()
    client = Client(hub)
    await hub.subscribe(client.session, match["id"], None)
    changes = [await score(conn, match["id"], n) for n in (1, 2, 3)]
    for change in changes:
        hub.on_message(message(change))
    hub.on_message(message(changes[1]))  # a duplicate (a relay re-publishing)
    assert client.seqs(match["id"]) == [1, 2, 3]
    assert client.frames[0] == {"type": "subscribed", "matchId": match["id"], "seq": 0,
                                "snapshot": client.frames[0]["snapshot"]}  # fmt: skip


class ClosedUnderUs(FakeTransport):
    """uvloop's transport once its socket closed, before ``connection_lost`` ran."""

    def write(self, data: bytes) -> None:
        raise RuntimeError("unable to perform operation on <TCPTransport closed=True>")


async def test_a_socket_closed_under_the_loop_is_dropped_and_the_others_still_get_the_frame(
    hub: Hub, factory: Factory, conn: Conn
) -> None:
    match = await factory.match()
    first, doomed, last = Client(hub), Client(hub), Client(hub)
    for client in (first, doomed, last):
        await hub.subscribe(client.session, match["id"], None)
    doomed.session.transport = ClosedUnderUs()
    change = await score(conn, match["id"], 1)
    hub.on_message(message(change))
    assert first.seqs(match["id"]) == last.seqs(match["id"]) == [1]
    assert doomed.session.closed
    await eventually(
        lambda: doomed.session not in hub.feeds[match["id"]].subscribers, 2, "the deferred detach"
    )


async def test_frame_bytes_are_the_relays_bytes(hub: Hub, factory: Factory, conn: Conn) -> None:
    match = await factory.match()
    client = Client(hub)
    await hub.subscribe(client.session, match["id"], None)
    change = await score(conn, match["id"], 1)
    before = len(client.transport.data)
    hub.on_message(message(change))
    assert bytes(client.transport.data[before:]) == wp.text_frame(encode(change))


async def test_a_jump_is_filled_from_the_log_before_anything_newer(
    hub: Hub, factory: Factory, conn: Conn
) -> None:
    match = await factory.match()
    client = Client(hub)
    await hub.subscribe(client.session, match["id"], None)
    changes = [await score(conn, match["id"], n) for n in range(1, 7)]
    hub.on_message(message(changes[0]))
    hub.on_message(message(changes[4]))  # 2..4 were lost
    hub.on_message(message(changes[5]))
    hub.on_message(message(changes[3]))  # a late duplicate of a filled one
    await settle(hub)
    assert client.seqs(match["id"]) == [1, 2, 3, 4, 5, 6]


async def test_a_bus_gap_fills_every_subscribed_match(
    hub: Hub, factory: Factory, conn: Conn
) -> None:
    first, second = await factory.match(), await factory.match()
    client = Client(hub)
    await hub.subscribe(client.session, first["id"], None)
    await hub.subscribe(client.session, second["id"], None)
    for n in (1, 2):
        await score(conn, first["id"], n)
        await score(conn, second["id"], n)
    hub.on_gap()  # the bus resubscribed: nothing was received meanwhile
    await settle(hub)
    assert client.seqs(first["id"]) == [1, 2]
    assert client.seqs(second["id"]) == [1, 2]


async def test_a_second_gap_during_a_fill_with_nothing_missing_is_not_a_reset(
    hub: Hub, factory: Factory, conn: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two bus resubscribes back to back, nothing lost: the second only asks the
    running fill to look again; no client gets an error or a second snapshot."""
    match = await factory.match()
    client = Client(hub)
    await hub.subscribe(client.session, match["id"], None)
    hub.on_message(message(await score(conn, match["id"], 1)))
    real = hub_module.changes_since
    reads: list[int] = []

    async def read(db: Conn, match_id: int, after: int, *, limit: int) -> list[Change]:
        reads.append(after)
        if len(reads) == 1:
            hub.on_gap()  # the second resubscribe arrives while the fill reads
        return await real(db, match_id, after, limit=limit)

    monkeypatch.setattr(hub_module, "changes_since", read)
    hub.on_gap()
    await settle(hub)
    assert reads == [1, 1]  # it looked again, and found nothing missing either time
    hub.on_message(message(await score(conn, match["id"], 2)))
    assert [f["type"] for f in client.frames if f["type"] in ("subscribed", "error")] == [
        "subscribed"
    ]
    assert client.seqs(match["id"]) == [1, 2]


async def test_a_change_held_during_a_fill_read_is_read_again_not_reset(
    hub: Hub, factory: Factory, conn: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change that arrives (after a lost one) while a fill's log read runs is
    newer than that read: the fill reads again and delivers both, no reset."""
    match = await factory.match()
    client = Client(hub)
    await hub.subscribe(client.session, match["id"], None)
    real = hub_module.changes_since
    later: list[Change] = []

    async def slow_read(db: Conn, match_id: int, after: int, *, limit: int) -> list[Change]:
        rows = await real(db, match_id, after, limit=limit)
        if not later:  # the first read: 1 and 2 are committed and published after it
            later.append(await score(conn, match_id, 1))
            later.append(await score(conn, match_id, 2))
            hub.on_message(message(later[1]))  # 1 was lost by the bus
        return rows

    monkeypatch.setattr(hub_module, "changes_since", slow_read)
    hub.on_gap()
    await settle(hub)
    assert [f["type"] for f in client.frames if f["type"] in ("subscribed", "error")] == [
        "subscribed"
    ]
    assert client.seqs(match["id"]) == [1, 2]


async def test_a_snapshot_ahead_of_the_node_waits_for_it(
    hub: Hub, factory: Factory, conn: Conn
) -> None:
    match = await factory.match()
    early, late = Client(hub), Client(hub)
    await hub.subscribe(early.session, match["id"], None)
    first = await score(conn, match["id"], 1)  # committed, not yet received by this node
    await hub.subscribe(late.session, match["id"], None)
    assert late.start(match["id"]) == 1
    hub.on_message(message(first))
    second = await score(conn, match["id"], 2)
    hub.on_message(message(second))
    assert early.seqs(match["id"]) == [1, 2]
    assert late.seqs(match["id"]) == [2]


async def test_resume_replays_after_since_then_goes_live(
    hub: Hub, factory: Factory, conn: Conn
) -> None:
    match = await factory.match()
    other = Client(hub)
    await hub.subscribe(other.session, match["id"], None)
    for n in (1, 2, 3):
        hub.on_message(message(await score(conn, match["id"], n)))
    client = Client(hub)
    await hub.subscribe(client.session, match["id"], 1)
    hub.on_message(message(await score(conn, match["id"], 4)))
    assert client.frames[0] == {
        "type": "subscribed",
        "matchId": match["id"],
        "seq": 1,
        "resumed": True,
    }
    assert client.seqs(match["id"]) == [2, 3, 4]


@pytest.mark.parametrize("case", ["ahead", "too_far", "pruned"])
async def test_resume_unavailable_sends_a_fresh_snapshot(
    hub: Hub, factory: Factory, conn: Conn, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    match = await factory.match()
    for n in (1, 2, 3, 4):
        await score(conn, match["id"], n)
    since = {"ahead": 9, "too_far": 0, "pruned": 0}[case]
    if case == "too_far":
        monkeypatch.setattr(wp, "RESUME_LIMIT", 2)
    if case == "pruned":
        await conn.execute(
            "DELETE FROM match_changes WHERE match_id = %s AND seq <= 2", (match["id"],)
        )
    client = Client(hub)
    await hub.subscribe(client.session, match["id"], since)
    error, snapshot = client.frames[0:2]
    assert error["type"] == "error" and error["code"] == "resume_unavailable"
    assert error["matchId"] == match["id"] and error["since"] == since
    assert snapshot["type"] == "subscribed" and snapshot["seq"] == 4
    assert snapshot["snapshot"]["homeScore"] == 4
    hub.on_message(message(await score(conn, match["id"], 5)))
    assert client.seqs(match["id"]) == [5]


@pytest.mark.parametrize("pruned", ["the missed ones", "everything after the feed"])
async def test_a_live_feed_whose_missed_changes_were_pruned_resets_to_a_snapshot(
    hub: Hub, factory: Factory, conn: Conn, pruned: str
) -> None:
    """Changes lost on the bus and gone from the log: every subscriber is told
    (resume_unavailable, reason pruned), gets a fresh snapshot, and goes on live."""
    match = await factory.match()
    client = Client(hub)
    await hub.subscribe(client.session, match["id"], None)
    hub.on_message(message(await score(conn, match["id"], 1)))
    changes = [await score(conn, match["id"], n) for n in (2, 3, 4)]
    upto = 3 if pruned == "the missed ones" else 4
    await conn.execute(
        "DELETE FROM match_changes WHERE match_id = %s AND seq BETWEEN 2 AND %s",
        (match["id"], upto),
    )
    hub.on_message(message(changes[2]))  # 2 and 3 were lost by the bus
    await settle(hub)
    error, snapshot = client.frames[2:4]
    assert error["code"] == "resume_unavailable" and error["reason"] == "pruned"
    assert snapshot["type"] == "subscribed" and snapshot["seq"] == 4
    assert snapshot["snapshot"]["homeScore"] == 4
    hub.on_message(message(await score(conn, match["id"], 5)))
    assert client.seqs(match["id"]) == [1, 5]


async def test_a_client_that_stops_reading_is_warned_then_closed(
    hub: Hub, factory: Factory, conn: Conn
) -> None:
    match = await factory.match()
    slow, fine = Client(hub, queue=8), Client(hub, queue=8)
    await hub.subscribe(slow.session, match["id"], None)
    await hub.subscribe(fine.session, match["id"], None)
    slow.transport.buffered = 1  # the kernel stopped taking its bytes
    for n in range(1, 12):
        hub.on_message(message(await score(conn, match["id"], n)))
    assert slow.closes == [(wp.CLOSE_SLOW, "slow consumer: 8 frames queued")]
    warnings = [f for f in slow.frames if f.get("code") == "slow_consumer"]
    assert len(warnings) == 1 and warnings[0]["limit"] == 8
    assert fine.seqs(match["id"]) == list(range(1, 12))
    await eventually(
        lambda: (
            slow.session not in hub.sessions
            and slow.session not in hub.feeds[match["id"]].subscribers
        ),
        2,
        "the deferred detach",
    )


async def test_unsubscribe_stops_delivery_and_drops_the_feed(
    hub: Hub, factory: Factory, conn: Conn
) -> None:
    match = await factory.match()
    client = Client(hub)
    await hub.subscribe(client.session, match["id"], None)
    hub.unsubscribe(client.session, match["id"])
    hub.on_message(message(await score(conn, match["id"], 1)))
    assert client.seqs(match["id"]) == []
    assert match["id"] not in hub.feeds
    with pytest.raises(wp.ProtocolError) as caught:
        hub.unsubscribe(client.session, match["id"])
    assert caught.value.code == "not_subscribed"


async def test_subscription_limit(hub: Hub, factory: Factory) -> None:
    client = Client(hub)
    for _ in range(10):
        await hub.subscribe(client.session, (await factory.match())["id"], None)
    extra = await factory.match()
    with pytest.raises(wp.ProtocolError) as caught:
        await hub.subscribe(client.session, extra["id"], None)
    assert caught.value.code == "too_many_subscriptions"


async def test_competition_covers_current_and_new_matches(
    hub: Hub, factory: Factory, conn: Conn
) -> None:
    comp = await factory.competition("Test League")
    current = await factory.match(competition=comp)
    client = Client(hub)
    await hub.subscribe_competition(client.session, comp)
    frames = client.frames
    assert frames[0] == {"type": "subscribed", "competitionId": comp, "matchIds": [current["id"]]}
    assert frames[1]["matchId"] == current["id"] and frames[1]["competitionId"] == comp
    # a match created later: its first change makes the node look it up and join it
    later = await factory.match(competition=comp)
    hub.on_message(message(await score(conn, later["id"], 1)))
    joined = await eventually(
        lambda: [f for f in client.frames if f.get("matchId") == later["id"]], 1, "the join"
    )
    assert joined[0]["type"] == "subscribed" and joined[0]["seq"] == 1
    hub.on_message(message(await score(conn, later["id"], 2)))
    assert client.seqs(later["id"]) == [2]
    hub.unsubscribe_competition(client.session, comp)
    assert client.session.reasons == {}


@pytest.mark.parametrize("seed", range(4))
async def test_random_bus_behaviour_never_breaks_the_sequence(
    hub: Hub, factory: Factory, pool: Pool, seed: int
) -> None:
    """Clients join (fresh or with since) while changes are written and the bus
    drops, duplicates, delays and reorders messages: each client ends with every
    seq after its start exactly once, in order."""
    rng = random.Random(seed)
    match = await factory.match()
    match_id = match["id"]
    clients: list[Client] = []
    written: list[Change] = []
    inflight: list[Change] = []

    async def writer() -> None:
        async with pool.connection() as conn:
            for n in range(1, 61):
                written.append(await score(conn, match_id, n))
                inflight.append(written[-1])
                await asyncio.sleep(rng.random() * 0.004)

    async def bus() -> None:
        while len(written) < 60 or inflight:
            await asyncio.sleep(rng.random() * 0.003)
            if not inflight:
                continue
            change = inflight.pop(rng.randrange(min(2, len(inflight))))  # mild reordering
            roll = rng.random()
            if roll < 0.15:
                continue  # lost
            hub.on_message(message(change))
            if roll > 0.9:
                hub.on_message(message(change))  # duplicated
            if rng.random() < 0.03:
                hub.on_gap()

    async def joiner() -> None:
        for _ in range(8):
            await asyncio.sleep(rng.random() * 0.03)
            client = Client(hub)
            clients.append(client)
            since = None
            if written and rng.random() < 0.5:
                since = rng.randrange(0, written[-1].seq + 1)
            await hub.subscribe(client.session, match_id, since)

    await asyncio.gather(writer(), bus(), joiner())
    hub.on_gap()  # the last changes may have been "lost": a resubscribe recovers them
    await settle(hub)
    for client in clients:
        start = client.start(match_id)
        assert client.seqs(match_id) == list(range(start + 1, 61)), f"start={start}"


async def test_keepalive_pings_everyone_and_closes_the_silent(pool: Pool) -> None:
    hub = Hub(pool.connection, node="test", max_subscriptions=10, ping_interval=0.05)
    answering, silent = Client(hub), Client(hub)
    for client in (answering, silent):
        client.session.pings = {}
    hub.start(Loops())
    try:

        def three_rounds() -> bool:
            answer_ping(answering)
            pinged = bytes(answering.transport.data).count(PING_FRAME)
            return pinged >= 3 and bool(silent.closes)

        await eventually(three_rounds, 5, "three ping rounds", every=0.01)
        assert answering.closes == []
        assert silent.closes == [(wp.CLOSE_INTERNAL, "no pong to the last ping")]
    finally:
        await hub.stop()


def test_heard_within_reads_the_peers_last_ack_from_the_kernel(
    tcp_pair: Callable[[], socket.socket],
) -> None:
    sock = tcp_pair()
    assert tcp_socket(FakeTransport()) is None
    assert heard_within(None, 60) is False  # no TCP socket: the kernel cannot tell
    assert heard_within(sock, 5)  # the handshake just happened
    sock.sendall(b"x")  # the peer's kernel ACKs it, unread
    assert heard_within(sock, 5)
    time.sleep(0.3)  # the kernel's last-ACK age: only time passing makes it grow
    assert not heard_within(sock, 0.1)
    assert heard_within(sock, 5)


async def test_keepalive_pings_only_clients_whose_tcp_was_quiet(
    pool: Pool, tcp_pair: Callable[[], socket.socket]
) -> None:
    """A client that ACKed frames within the interval is known to be there: no
    ping, no pong to parse. A quiet one is pinged (and must answer)."""
    hub = Hub(pool.connection, node="test", max_subscriptions=10, ping_interval=0.2)
    busy = Client(hub, transport=TcpTransport(tcp_pair()))
    quiet = Client(hub, transport=TcpTransport(tcp_pair()))
    assert busy.session.sock is not None
    for client in (busy, quiet):
        client.session.pings = {}
    await asyncio.sleep(0.3)  # both handshakes are now older than the interval
    hub.start(Loops())
    try:

        def two_rounds() -> bool:
            busy.transport.write(wp.text_frame(b'{"type":"score:update"}'))
            answer_ping(quiet)
            return bytes(quiet.transport.data).count(PING_FRAME) >= 2

        await eventually(two_rounds, 5, "two rounds that pinged the quiet one", every=0.05)
        assert bytes(busy.transport.data).count(PING_FRAME) == 0
        assert bytes(quiet.transport.data).count(PING_FRAME) >= 2
        assert busy.closes == quiet.closes == []
    finally:
        await hub.stop()


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["add", "drop", "forget"]),
            st.integers(1, 4),
            st.sampled_from([MATCH, 10, 11]),
        ),
        max_size=40,
    )
)
def test_the_subscription_count_always_matches_the_reasons_held(
    steps: list[tuple[str, int, int | str]],
) -> None:
    """``Session.subscriptions`` is kept as a count; it must equal what the
    reasons say after any sequence of joins and leaves."""
    session = Session(FakeTransport(), FakeProto(), lambda *a: None, queue_limit=8)
    for op, match_id, reason in steps:
        if op == "add":
            session.add_reason(match_id, reason)
        elif op == "drop":
            session.drop_reason(match_id, reason)
        else:
            session.forget(match_id)
        assert session.subscriptions == sum(MATCH in held for held in session.reasons.values())


async def test_a_keepalive_poisoned_by_a_bug_is_restarted_and_keeps_pinging(
    pool: Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(supervise, "BACKOFF_FIRST", 0.01)
    hub = Hub(pool.connection, node="test", max_subscriptions=10, ping_interval=0.05)
    client = Client(hub)
    client.session.pings = {}
    real_keepalive = Session.keepalive
    poisoned = [True]

    def keepalive(session: Session, loop: asyncio.AbstractEventLoop, interval: float) -> bool:
        if poisoned:
            poisoned.clear()
            raise RuntimeError("a bug in keepalive")
        return real_keepalive(session, loop, interval)

    monkeypatch.setattr(Session, "keepalive", keepalive)
    loops = Loops()
    hub.start(loops)
    try:

        def pinging_again() -> bool:
            answer_ping(client)
            (report,) = loops.reports()
            return report.restarts == 1 and bytes(client.transport.data).count(PING_FRAME) >= 2

        await eventually(pinging_again, 5, "the restarted keepalive to ping", every=0.01)
        (report,) = loops.reports()
        assert report.restarts == 1 and report.ok
        assert bytes(client.transport.data).count(PING_FRAME) >= 2
        assert client.closes == []
    finally:
        await hub.stop()
