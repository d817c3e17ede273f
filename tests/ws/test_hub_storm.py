"""A reconnect storm's joins, done at once (issue 11): ``Hub.subscribe_now`` serves
a subscribe or resume from the feed's memory in the same call, no task and no
coroutine, and gives the client exactly what ``Hub.subscribe`` would; whatever
needs waiting (or a refusal) is left to ``subscribe``, with nothing done. A
resume's frames are built once per ``since`` until the feed's next change, and
the subscriptions gauge is summed without Python code per client.

In process (real PostgreSQL change log, fake sockets, ``tests.ws.test_hub``'s
clients); the real-edge suites (``test_resume``, ``test_memory_joins``, ...)
reach ``subscribe_now`` through ``ws_lean.act``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from edge import ws_protocol as wp
from edge.ws_hub import Hub
from store.db import Conn
from tests.factories import Factory
from tests.ws.test_hub import Client, message, score
from tests.ws.test_hub_memory import CountingDb, db, followed, make_hub  # noqa: F401  (fixtures)


@pytest.fixture
def maker(request: pytest.FixtureRequest) -> Callable[..., Hub]:
    """``test_hub_memory``'s ``make_hub`` (its hubs stopped at the end)."""
    make: Callable[..., Hub] = request.getfixturevalue("make_hub")
    return make


@pytest.fixture
def hub(maker: Callable[..., Hub]) -> Hub:
    return maker()


@pytest.fixture
def counted(request: pytest.FixtureRequest) -> CountingDb:
    """``test_hub_memory``'s counting db factory (the hubs' own)."""
    found: CountingDb = request.getfixturevalue("db")
    return found


@pytest.mark.parametrize("since", [None, 30, 27, 20])
async def test_a_join_served_from_memory_at_once_sends_what_subscribe_sends(
    hub: Hub, counted: CountingDb, factory: Factory, conn: Conn, since: int | None
) -> None:
    match_id, _ = await followed(hub, conn, factory, 30)
    now, later = Client(hub), Client(hub)
    counted.reads = 0
    assert hub.subscribe_now(now.session, match_id, since)
    await hub.subscribe(later.session, match_id, since)
    assert counted.reads == 0
    assert bytes(now.transport.data) == bytes(later.transport.data)
    feed = hub.feeds[match_id]
    assert now.session in feed.subscribers and later.session in feed.subscribers
    assert now.session.subscriptions == 1
    hub.on_message(message(await score(conn, match_id, 31)))
    start = 30 if since is None else since
    for client in (now, later):
        assert client.start(match_id) == start
        assert client.seqs(match_id) == list(range(start + 1, 32))


async def test_what_needs_waiting_or_refusing_is_left_to_subscribe_with_nothing_done(
    maker: Callable[..., Hub], factory: Factory, conn: Conn
) -> None:
    hub = maker(ring=5)
    match_id, _ = await followed(hub, conn, factory, 30)
    unknown = await factory.match()  # no feed yet: its first join reads the database
    cases = [
        (unknown["id"], None),
        (match_id, 31),  # ahead of the feed
        (match_id, 20),  # older than the ring of 5
    ]
    for target, since in cases:
        client = Client(hub)
        assert not hub.subscribe_now(client.session, target, since)
        assert client.transport.data == b"" and client.session.reasons == {}
    # already subscribed: subscribe raises, subscribe_now leaves it to it
    twice = Client(hub)
    assert hub.subscribe_now(twice.session, match_id, None)
    sent = bytes(twice.transport.data)
    assert not hub.subscribe_now(twice.session, match_id, None)
    assert bytes(twice.transport.data) == sent
    with pytest.raises(wp.ProtocolError):
        await hub.subscribe(twice.session, match_id, None)


async def test_the_turnstile_paces_joins_done_at_once_and_keeps_their_order(
    maker: Callable[..., Hub], factory: Factory, conn: Conn
) -> None:
    """At most ``join_slice`` joins per event-loop pass, done at once or not: once a
    pass is full, the next joins go through ``subscribe`` and wait their turn."""
    hub = maker(join_slice=3)
    match_id, _ = await followed(hub, conn, factory, 10)
    await asyncio.sleep(0)  # a fresh pass
    clients = [Client(hub) for _ in range(5)]
    done = [hub.subscribe_now(c.session, match_id, 10) for c in clients]
    assert done == [True, True, True, False, False]
    waiting = [asyncio.ensure_future(hub.subscribe(c.session, match_id, 10)) for c in clients[3:]]
    await asyncio.gather(*waiting)
    hub.on_message(message(await score(conn, match_id, 11)))
    for client in clients:
        assert client.start(match_id) == 10 and client.seqs(match_id) == [11]


async def test_a_resume_after_a_change_gets_the_change_not_frames_built_before_it(
    hub: Hub, factory: Factory, conn: Conn
) -> None:
    """Resumes from one ``since`` share frames built once, until the feed moves on."""
    match_id, _ = await followed(hub, conn, factory, 10)
    first, second = Client(hub), Client(hub)
    assert hub.subscribe_now(first.session, match_id, 8)
    assert 8 in hub.feeds[match_id].resumes
    hub.on_message(message(await score(conn, match_id, 11)))
    assert hub.feeds[match_id].resumes == {}
    assert hub.subscribe_now(second.session, match_id, 8)
    hub.on_message(message(await score(conn, match_id, 12)))
    for client in (first, second):
        assert client.start(match_id) == 8
        assert client.seqs(match_id) == [9, 10, 11, 12]


async def test_the_subscriptions_gauge_equals_what_the_sessions_hold(
    hub: Hub, factory: Factory, conn: Conn
) -> None:
    match = await factory.match(competition="Storm League")
    competition_id = int(match["competition"]["id"])
    clients = [Client(hub) for _ in range(4)]

    def held() -> int:
        return sum(c.session.subscriptions for c in clients if c.session in hub.sessions)

    await hub.subscribe(clients[0].session, match["id"], None)
    assert hub.subscribe_now(clients[1].session, match["id"], None)
    await hub.subscribe_competition(clients[2].session, competition_id)
    await hub.subscribe_competition(clients[3].session, competition_id)
    await hub.subscribe(clients[3].session, match["id"], None)
    assert hub.subscription_count() == held() == 5
    hub.unsubscribe(clients[1].session, match["id"])
    hub.unsubscribe_competition(clients[2].session, competition_id)
    assert hub.subscription_count() == held() == 3
    hub.detach(clients[3].session)
    assert hub.subscription_count() == held() == 1
