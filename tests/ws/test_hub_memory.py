"""Joins from memory (issue 11): the hub serves subscribes and resumes of a
followed match from the feed's snapshot and ring, reads PostgreSQL once for a
match's first join (shared by concurrent joiners) and for a resume older than
the ring, and keeps every delivery rule of ``test_hub``.

The database is counted by wrapping the hub's db factory: each ``db()`` is
one connection checkout, i.e. one read (one transaction) of the hub.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from edge.ws_hub import Hub
from livescore.model import Clock, EventType, MatchPatch, MatchStatus, NewEvent, Period
from store.db import Conn, Pool
from store.matches import get_match
from store.writes import apply_change
from tests.factories import Factory
from tests.waiting import eventually

# Every delivery rule of the in-process suite, again with joins served from memory
# (the ``hub`` fixture below replaces test_hub's for these).
from tests.ws.test_hub import (  # noqa: F401  (collected here with this module's hub)
    Client,
    message,
    score,
    settle,
    test_a_bus_gap_fills_every_subscribed_match,
    test_a_change_held_during_a_fill_read_is_read_again_not_reset,
    test_a_jump_is_filled_from_the_log_before_anything_newer,
    test_a_live_feed_whose_missed_changes_were_pruned_resets_to_a_snapshot,
    test_a_second_gap_during_a_fill_with_nothing_missing_is_not_a_reset,
    test_live_changes_are_delivered_once_in_order,
    test_random_bus_behaviour_never_breaks_the_sequence,
    test_resume_replays_after_since_then_goes_live,
    test_resume_unavailable_sends_a_fresh_snapshot,
    test_unsubscribe_stops_delivery_and_drops_the_feed,
)

RING = 1000


class CountingDb:
    """The hub's db factory, counting checkouts (reads)."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.reads = 0

    def __call__(self) -> AbstractAsyncContextManager[Conn]:
        self.reads += 1
        return self.pool.connection()


@pytest.fixture
def db(pool: Pool) -> CountingDb:
    return CountingDb(pool)


@pytest.fixture
async def make_hub(db: CountingDb) -> AsyncIterator[Callable[..., Hub]]:
    hubs: list[Hub] = []

    def make(ring: int = RING, **options: Any) -> Hub:
        hub = Hub(db, node="test", max_subscriptions=10, ring_size=ring, **options)
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        await hub.stop()


@pytest.fixture
def hub(make_hub: Callable[..., Hub]) -> Hub:
    return make_hub()


async def followed(hub: Hub, conn: Conn, factory: Factory, changes: int) -> tuple[int, Client]:
    """A match with one subscriber on ``hub`` that has been delivered ``changes`` scores."""
    match = await factory.match()
    watcher = Client(hub)
    await hub.subscribe(watcher.session, match["id"], None)
    for n in range(1, changes + 1):
        hub.on_message(message(await score(conn, match["id"], n)))
    return int(match["id"]), watcher


async def test_a_thousand_concurrent_joins_of_a_followed_match_read_nothing(
    hub: Hub, db: CountingDb, factory: Factory, conn: Conn
) -> None:
    match_id, _ = await followed(hub, conn, factory, 30)
    db.reads = 0
    clients = [Client(hub) for _ in range(1000)]
    sinces = [None if n % 2 else n % 31 for n in range(1000)]
    await asyncio.gather(
        *(
            hub.subscribe(c.session, match_id, since)
            for c, since in zip(clients, sinces, strict=True)
        )
    )
    assert db.reads == 0
    hub.on_message(message(await score(conn, match_id, 31)))
    # 1,001 subscribers: the fan-out is written fanout_slice sockets per loop pass
    await eventually(lambda: not hub.outbox, 10, "the fan-out to be written")
    for client, since in zip(clients, sinces, strict=True):
        start = client.start(match_id)
        assert start == (30 if since is None else since)
        assert client.seqs(match_id) == list(range(start + 1, 32))
        if since is None:
            assert client.frames[0]["snapshot"]["homeScore"] == 30


async def test_the_first_join_is_one_read_shared_by_concurrent_joiners(
    hub: Hub, db: CountingDb, factory: Factory, conn: Conn
) -> None:
    match = await factory.match()
    for n in range(1, 11):
        await score(conn, match["id"], n)  # in the log; this node never saw them published
    db.reads = 0
    clients = [Client(hub) for _ in range(200)]
    sinces = [None if n % 2 else n % 11 for n in range(200)]
    await asyncio.gather(
        *(
            hub.subscribe(c.session, match["id"], since)
            for c, since in zip(clients, sinces, strict=True)
        )
    )
    assert db.reads == 1
    assert hub.feeds[match["id"]].last == 10
    for client, since in zip(clients, sinces, strict=True):
        start = client.start(match["id"])
        assert start == (10 if since is None else since)
        assert client.seqs(match["id"]) == list(range(start + 1, 11))


async def test_an_unknown_match_is_refused_for_every_concurrent_joiner(
    hub: Hub, db: CountingDb
) -> None:
    clients = [Client(hub) for _ in range(5)]
    results = await asyncio.gather(
        *(hub.subscribe(c.session, 2**40, None) for c in clients), return_exceptions=True
    )
    assert db.reads == 1
    assert all(getattr(r, "code", None) == "unknown_match" for r in results)
    assert 2**40 not in hub.feeds


@pytest.mark.parametrize("ring", [5, 0])
async def test_a_resume_within_the_ring_reads_nothing_and_an_older_one_reads_the_log(
    make_hub: Callable[..., Hub], db: CountingDb, factory: Factory, conn: Conn, ring: int
) -> None:
    hub = make_hub(ring)
    match_id, _ = await followed(hub, conn, factory, 12)
    db.reads = 0
    recent = Client(hub)
    await hub.subscribe(recent.session, match_id, 12 - ring)  # ring 0: since == last
    assert db.reads == 0
    assert recent.frames[0] == {"type": "subscribed", "matchId": match_id, "seq": 12 - ring,
                                "resumed": True}  # fmt: skip
    assert recent.seqs(match_id) == list(range(13 - ring, 13))
    fresh = Client(hub)
    await hub.subscribe(fresh.session, match_id, None)
    assert db.reads == 0  # a plain subscribe takes the snapshot, ring or not
    old = Client(hub)
    await hub.subscribe(old.session, match_id, 12 - ring - 3)
    assert db.reads >= 1  # the log
    assert old.frames[0]["resumed"] is True
    assert old.seqs(match_id) == list(range(12 - ring - 2, 13))
    hub.on_message(message(await score(conn, match_id, 13)))
    for client in (recent, fresh, old):
        assert client.seqs(match_id)[-1] == 13


async def test_the_ring_is_filled_from_the_log_by_the_first_read(
    hub: Hub, db: CountingDb, factory: Factory, conn: Conn
) -> None:
    """A storm of resumes on a node that did not follow the match: one read serves all."""
    match = await factory.match()
    for n in range(1, 21):
        await score(conn, match["id"], n)
    db.reads = 0
    clients = [Client(hub) for _ in range(50)]
    await asyncio.gather(*(hub.subscribe(c.session, match["id"], 15 + n % 5) for n, c in
                           enumerate(clients)))  # fmt: skip
    assert db.reads == 1
    for n, client in enumerate(clients):
        assert client.seqs(match["id"]) == list(range(16 + n % 5, 21))


def change_of_kind(step: int) -> MatchPatch:
    """A write of a kind chosen by ``step``: every change type the snapshot must follow."""
    kind = step % 5
    if kind == 0:
        return MatchPatch(
            source="t",
            home_score=step,
            away_score=1,
            clock=Clock(minute=step, period=Period.FIRST_HALF),
            stats={"shots": step},
        )
    if kind == 1:
        return MatchPatch(
            source="t",
            new_events=(NewEvent(type=EventType.TEXT, minute=step, message=f"line {step}"),),
        )
    if kind == 2:
        return MatchPatch(
            source="t",
            status=MatchStatus.LIVE if step % 10 == 2 else MatchStatus.HALFTIME,
            clock=Clock(minute=45, period=Period.FIRST_HALF),
        )
    if kind == 3:
        return MatchPatch(
            source="t", start_time=datetime(2026, 5, 1, 18, tzinfo=UTC) + timedelta(minutes=step)
        )
    return MatchPatch(
        source="t",
        home_score=step,
        away_score=2,
        new_events=(
            NewEvent(type=EventType.GOAL, minute=step, side="home", message=f"goal {step}"),
        ),
    )


async def test_the_snapshot_in_memory_is_the_databases_at_its_seq(
    hub: Hub, db: CountingDb, factory: Factory, conn: Conn
) -> None:
    """After each change delivered, a new subscriber's snapshot (from memory) is
    exactly what PostgreSQL answers for the match at that seq."""
    match_id, _ = await followed(hub, conn, factory, 0)
    for step in range(1, 16):
        for change in await apply_change(conn, match_id, change_of_kind(step)):
            hub.on_message(message(change))
        reads = db.reads
        client = Client(hub)
        await hub.subscribe(client.session, match_id, None)
        assert db.reads == reads
        subscribed: dict[str, Any] = client.frames[0]
        expected = await get_match(conn, match_id)
        assert subscribed["seq"] == expected["seq"]
        assert subscribed["snapshot"] == expected, f"step {step}"


async def test_latest_mode_collapses_a_backlog_into_one_snapshot(
    hub: Hub, db: CountingDb, factory: Factory, conn: Conn
) -> None:
    """In-process: a latest-mode client whose queue reaches half its limit is sent
    nothing more until it drains, then one snapshot frame, then live changes."""
    match_id, _ = await followed(hub, conn, factory, 0)
    slow = Client(hub, queue=8)
    await hub.subscribe(slow.session, match_id, None, latest=True)
    slow.transport.buffered = 1  # the socket stopped taking data: frames queue up
    for n in range(1, 21):
        hub.on_message(message(await score(conn, match_id, n)))
    assert not slow.closes
    assert slow.session in hub.feeds[match_id].lagging
    written = len(slow.frames)
    assert [f["seq"] for f in slow.frames if f["type"] == "score:update"][-1] < 20
    slow.transport.buffered = 0  # it read everything
    hub.on_message(message(await score(conn, match_id, 21)))
    frames = slow.frames[written:]
    # the snapshot comes at the next change, or earlier from the recheck timer
    assert frames[0]["type"] == "snapshot" and frames[0]["seq"] in (20, 21)
    assert frames[0]["data"]["homeScore"] == frames[0]["seq"]
    hub.on_message(message(await score(conn, match_id, 22)))
    seqs = [f["seq"] for f in slow.frames if f.get("matchId") == match_id]
    assert seqs == sorted(seqs) and seqs[-1] == 22
    assert not slow.closes and db.reads == 1


async def test_a_drained_lagging_client_catches_up_without_a_new_change(
    hub: Hub, factory: Factory, conn: Conn
) -> None:
    match_id, _ = await followed(hub, conn, factory, 0)
    slow = Client(hub, queue=8)
    await hub.subscribe(slow.session, match_id, None, latest=True)
    slow.transport.buffered = 1
    for n in range(1, 11):
        hub.on_message(message(await score(conn, match_id, n)))
    slow.transport.buffered = 0

    def caught_up() -> bool:
        return bool(slow.frames[-1]["type"] == "snapshot" and slow.frames[-1]["seq"] == 10)

    await eventually(caught_up, 5)
    await settle(hub)


async def test_an_exact_client_is_still_closed_when_its_queue_is_full(
    hub: Hub, factory: Factory, conn: Conn
) -> None:
    match_id, _ = await followed(hub, conn, factory, 0)
    slow = Client(hub, queue=8)
    await hub.subscribe(slow.session, match_id, None)
    slow.transport.buffered = 1
    for n in range(1, 21):
        hub.on_message(message(await score(conn, match_id, n)))
    assert slow.closes and slow.closes[0][0] == 4008
