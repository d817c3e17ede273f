"""The change bus (one Pub/Sub per worker, listeners, gaps) and the caches' seq rules."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
import redis.asyncio as aioredis

from edge.bus import ChangeBus
from edge.cache import (
    REFERENCE_TTL,
    REVALIDATE_WINDOW,
    STALE_GRACE,
    Caches,
    MatchCache,
    PageCache,
    SingleFlight,
    match_document,
)
from livescore.keys import Keys
from store.change_codec import MalformedChange, decode, encode
from store.writes import Change
from tests.conftest import Services
from tests.edge.tcp_proxy import TcpProxy
from tests.waiting import FakeClock, eventually


def frame(match_id: int, seq: int) -> bytes:
    return orjson.dumps(
        {"type": "score:update", "matchId": match_id, "seq": seq, "data": {"homeScore": 1},
         "ts": "2030-01-01T00:00:00+00:00"}
    )  # fmt: skip


@pytest.fixture
async def proxy(services: Services) -> AsyncIterator[TcpProxy]:
    url = urlsplit(services.redis_url)
    assert url.hostname and url.port
    proxy = TcpProxy(host=url.hostname, port=url.port).start()
    try:
        yield proxy
    finally:
        proxy.close()


def test_decode_keeps_the_raw_bytes_and_encode_gives_them_back() -> None:
    raw = frame(7, 3)
    change = decode(raw)
    assert (change.type, change.match_id, change.seq, change.message) == ("score:update", 7, 3, raw)
    assert change.payload == {"homeScore": 1}
    assert change.created_at is not None and change.created_at.year == 2030
    assert encode(change) == raw
    for bad in (b"nope", b"[1]", b'{"matchId": "7", "seq": 1, "type": "x"}', b'{"seq": 1}'):
        with pytest.raises(MalformedChange):
            decode(bad)


async def test_listeners_get_every_message_and_a_gap_after_a_reconnect(
    services: Services, proxy: TcpProxy, redis: aioredis.Redis, keys: Keys
) -> None:
    url = urlsplit(services.redis_url)._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()
    bus = ChangeBus(url, keys.changes_channel, ping_every=0.5, backoff_max=0.2)
    got: list[Change] = []
    gaps: list[float] = []

    def broken(message: Change) -> None:
        raise RuntimeError("one bad listener")

    bus.add_listener(broken)  # logged, never stops the others
    bus.add_listener(got.append)
    bus.add_gap_listener(lambda: gaps.append(time.monotonic()))
    task = asyncio.create_task(bus.run())

    async def subscribed() -> bool:
        # the bus counts as connected once it sent SUBSCRIBE; Redis may not have run it yet
        ((_, count),) = await redis.pubsub_numsub(keys.changes_channel)
        return bool(count == 1)

    try:
        await eventually(lambda: bus.connected)
        await eventually(subscribed, what="Redis to hold the subscription")
        await redis.publish(keys.changes_channel, frame(1, 1))
        await redis.publish(keys.changes_channel, b"garbage")
        await redis.publish(keys.changes_channel, frame(1, 2))
        await eventually(lambda: len(got) == 2)
        assert [m.seq for m in got] == [1, 2] and len(gaps) == 1

        proxy.cut()
        await eventually(lambda: not bus.connected)
        await redis.publish(keys.changes_channel, frame(1, 3))  # lost: nobody subscribed
        proxy.restore()
        await eventually(lambda: len(gaps) == 2)
        await eventually(subscribed, what="Redis to hold the new subscription")
        await redis.publish(keys.changes_channel, frame(1, 4))
        await eventually(lambda: len(got) == 3)
        assert [m.seq for m in got] == [1, 2, 4]
    finally:
        await bus.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# -- caches ------------------------------------------------------------------------------


def test_match_cache_entries_only_move_forward() -> None:
    cache = MatchCache(ttl=60)
    cache.fill(1, 5, b"five")
    assert cache.fill(1, 4, b"four").body == b"five"  # a slow read from before: loses
    entry, fresh = cache.lookup(1)
    assert entry is not None and entry.seq == 5 and fresh
    assert cache.on_change(1, 6)  # published: seq 5 is stale now, but still the best we have
    entry, fresh = cache.lookup(1)
    assert entry is not None and entry.seq == 5 and not fresh
    cache.fill(1, 5, b"five again")  # a read that started before the change landed
    assert cache.lookup(1)[1] is False
    cache.fill(1, 6, b"six")
    entry, fresh = cache.lookup(1)
    assert entry is not None and entry.body == b"six" and fresh
    assert not cache.on_change(1, 6)  # the relay's duplicate: nothing went stale
    cache.clear()
    assert cache.lookup(1)[1] is False and cache.floor(1) == 6


def test_match_cache_forgets_the_floors_of_matches_quiet_the_longest() -> None:
    cache = MatchCache(ttl=60, max_floors=3)
    for match_id in (1, 2, 3):
        cache.fill(match_id, 1, b"x")
    cache.on_change(1, 2)  # match 1 is active again: match 2 is now the quietest
    cache.on_change(4, 1)
    assert [cache.floor(m) for m in (1, 2, 3, 4)] == [2, 0, 1, 1]
    assert cache.lookup(2) == (None, False)  # its entry went with its floor


def test_match_cache_entries_expire() -> None:
    clock = FakeClock()
    cache = MatchCache(ttl=2.0, clock=clock)
    cache.fill(1, 1, b"x")
    clock.advance(1.9)
    entry, fresh = cache.lookup(1)
    assert entry is not None and fresh
    clock.advance(0.2)  # past the TTL: still served during a reload, but stale
    entry, fresh = cache.lookup(1)
    assert entry is not None and not fresh
    clock.advance(STALE_GRACE)  # too old even for that
    assert cache.lookup(1) == (None, False)


def test_page_cache_entries_expire() -> None:
    clock = FakeClock()
    pages = PageCache(ttl=1.0, clock=clock)
    pages.fill("q", pages.ticket(), b"page")
    assert pages.lookup("q")[1] is True
    clock.advance(1.1)
    entry, fresh = pages.lookup("q")
    assert entry is not None and not fresh


def test_caches_evict_the_least_recently_used_entry() -> None:
    cache = MatchCache(ttl=60, max_entries=3)
    for match_id in (1, 2, 3):
        cache.fill(match_id, 1, b"x")
    assert cache.lookup(1)[0] is not None  # the early match is the hot one
    cache.fill(4, 1, b"x")  # full: the least recently used goes, not the first filled
    assert [cache.lookup(m)[0] is not None for m in (1, 2, 3, 4)] == [True, False, True, True]
    assert len(cache) == 3

    pages = PageCache(ttl=60, max_entries=2)
    pages.fill("a", pages.ticket(), b"a")
    pages.fill("b", pages.ticket(), b"b")
    assert pages.lookup("a")[0] is not None
    pages.fill("c", pages.ticket(), b"c")
    assert [pages.lookup(k)[0] is not None for k in "abc"] == [True, False, True]


def test_page_cache_orders_fills_by_ticket() -> None:
    pages = PageCache(ttl=60)
    early, late = pages.ticket(), pages.ticket()
    pages.fill("q", late, b"late")
    assert pages.fill("q", early, b"early").body == b"late"  # an older view loses
    racing = pages.ticket()
    pages.invalidate()
    pages.fill("q", racing, b"raced")  # read before the change: kept, but stale
    entry, fresh = pages.lookup("q")
    assert entry is not None and entry.body == b"raced" and not fresh


async def test_caches_reload_once_and_serve_the_previous_entry_meanwhile() -> None:
    seq = 1
    loads = 0
    database = asyncio.Event()  # the database answers when set

    async def load(match_id: int) -> tuple[int, bytes]:
        nonlocal loads
        loads += 1
        read = seq
        await database.wait()
        return read, f"seq {read}".encode()

    caches = Caches(load)
    first = asyncio.gather(*(caches.match(7) for _ in range(10)))
    await eventually(lambda: loads == 1, what="the first load")
    database.set()
    assert {e.seq for e in await first} == {1} and loads == 1
    seq = 2
    database.clear()
    caches.on_change(7, 2)  # starts the reload at once
    during = await asyncio.gather(*(caches.match(7) for _ in range(10)))  # nobody waits
    assert {e.seq for e in during} == {1} and loads == 2
    database.set()
    await eventually(lambda: caches.matches.lookup(7)[1], what="the reload to land")
    after = await caches.match(7)
    assert after.seq == 2 and loads == 2


async def test_single_flight_shares_one_load() -> None:
    flights: SingleFlight[int, int] = SingleFlight()
    loads = 0

    database = asyncio.Event()

    async def load() -> int:
        nonlocal loads
        loads += 1
        await database.wait()
        return 42

    results = asyncio.gather(*(flights.run(1, load) for _ in range(20)))
    await eventually(lambda: flights.busy(1), what="the load")
    database.set()
    assert await results == [42] * 20 and loads == 1
    assert await flights.run(1, load) == 42 and loads == 2


async def test_single_flight_survives_a_cancelled_caller_and_shares_errors() -> None:
    flights: SingleFlight[int, int] = SingleFlight()

    database = asyncio.Event()

    async def slow() -> int:
        await database.wait()
        return 7

    first = asyncio.create_task(flights.run(1, slow))
    second = asyncio.create_task(flights.run(1, slow))
    await eventually(lambda: flights.busy(1), what="the load")
    first.cancel()  # a client hung up: the others still get the result
    database.set()
    assert await second == 7

    async def failing() -> int:
        await database.wait()
        raise ValueError("database said no")

    results = await asyncio.gather(
        *(flights.run(2, failing) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, ValueError) for r in results)


def test_a_change_that_follows_the_cached_match_is_patched_in() -> None:
    cache = MatchCache(ttl=60)
    match = {"id": 1, "homeScore": 0, "awayScore": 0, "status": "live", "seq": 5,
             "clock": {"minute": 10}, "updatedAt": "t5"}  # fmt: skip
    cache.fill(1, 5, match_document(match))
    score = {"homeScore": 1, "awayScore": 0, "clock": {"minute": 11}, "breakdown": {}}
    assert cache.patch(1, 6, "score:update", score, "t6")
    entry, fresh = cache.lookup(1)
    assert entry is not None and fresh and entry.seq == 6
    assert orjson.loads(entry.body) == {"data": match | score | {"seq": 6, "updatedAt": "t6"}}
    assert not cache.patch(1, 8, "match:status", {"status": "finished"}, "t8")  # a gap
    assert not cache.patch(1, 7, "match:teleport", {}, "t7")  # a type it does not know
    assert not cache.patch(2, 1, "score:update", score, "t1")  # not cached
    assert cache.patch(1, 7, "commentary:new", {"id": 9, "message": "x"}, "t7")
    assert orjson.loads(cache.lookup(1)[0].body)["data"]["homeScore"] == 1  # type: ignore[union-attr]


def sub_page_loader(state: dict[str, int], gate: asyncio.Event) -> Callable[[], Any]:
    """A commentary page loader over a fake database: the match's seq is read
    when the load starts, the page when ``gate`` opens (a slow query)."""

    async def load() -> tuple[int, bytes]:
        state["loads"] += 1
        seq = state["seq"]
        await gate.wait()
        return seq, f"page at {seq}".encode()

    return load


async def test_a_match_page_is_read_once_and_reloaded_once_its_match_changes() -> None:
    state, gate = {"seq": 3, "loads": 0}, asyncio.Event()
    gate.set()
    caches = Caches(lambda match_id: asyncio.sleep(0, (0, b"")), match_ttl=60)
    key = (7, "commentary", "limit=5")
    load = sub_page_loader(state, gate)
    pages = await asyncio.gather(*(caches.subpage(key, load) for _ in range(50)))
    assert {p.body for p in pages} == {b"page at 3"} and state["loads"] == 1
    assert (await caches.subpage(key, load)).seq == 3 and state["loads"] == 1
    caches.on_published(8, 9, "score:update", {}, None)  # another match: still fresh
    assert caches.subpages.lookup(key)[1]
    state["seq"] = 4
    caches.on_published(7, 4, "commentary:new", {}, None)
    assert not caches.subpages.lookup(key)[1]
    # the first read after the change starts the reload and is served the page meanwhile
    assert (await caches.subpage(key, load)).body == b"page at 3"
    await eventually(lambda: caches.subpages.lookup(key)[1], what="the reload to land")
    assert (await caches.subpage(key, load)).body == b"page at 4" and state["loads"] == 2


async def test_no_reader_waits_for_the_reload_a_published_change_makes() -> None:
    state, gate = {"seq": 1, "loads": 0}, asyncio.Event()
    gate.set()
    caches = Caches(lambda match_id: asyncio.sleep(0, (0, b"")), match_ttl=60)
    key = (7, "changes", "since=0")
    load = sub_page_loader(state, gate)
    await caches.subpage(key, load)
    gate.clear()  # the database is slow from now on
    state["seq"] = 2
    caches.on_published(7, 2, "score:update", {}, None)
    first = await caches.subpage(key, load)  # starts the one reload, does not wait for it
    await eventually(lambda: state["loads"] == 2, what="the reload to start")
    during = await asyncio.gather(*(caches.subpage(key, load) for _ in range(20)))
    assert first.seq == 1 and {p.seq for p in during} == {1} and state["loads"] == 2
    gate.set()
    await eventually(lambda: caches.subpages.lookup(key)[1], what="the reload to land")
    assert (await caches.subpage(key, load)).seq == 2 and state["loads"] == 2


async def test_a_page_stale_by_age_or_older_than_the_window_is_read_while_its_reader_waits() -> (
    None
):
    clock = FakeClock()
    state, gate = {"seq": 1, "loads": 0}, asyncio.Event()
    gate.set()
    caches = Caches(lambda match_id: asyncio.sleep(0, (0, b"")), match_ttl=2.0, clock=clock)
    key = (7, "commentary", "")
    load = sub_page_loader(state, gate)
    await caches.subpage(key, load)
    clock.advance(REVALIDATE_WINDOW)  # stored that long ago: a change no longer serves it
    state["seq"] = 2
    caches.on_published(7, 2, "commentary:new", {}, None)
    assert (await caches.subpage(key, load)).seq == 2 and state["loads"] == 2
    clock.advance(2.0)  # stale by its TTL, no change: a write that published nothing
    state["seq"] = 3
    assert (await caches.subpage(key, load)).seq == 3 and state["loads"] == 3

    async def page() -> bytes:
        return f"list {state['seq']}".encode()

    assert (await caches.page("status=live", page)).body == b"list 3"
    clock.advance(REVALIDATE_WINDOW)
    state["seq"] = 4
    caches.on_published(7, 4, "score:update", {}, None)
    assert (await caches.page("status=live", page)).body == b"list 4"


async def test_list_pages_are_served_while_a_change_reloads_them_never_after_our_own_write() -> (
    None
):
    caches = Caches(lambda match_id: asyncio.sleep(0, (0, b"")), match_ttl=60)
    database, reads = asyncio.Event(), {"n": 0}
    database.set()

    async def page() -> bytes:
        reads["n"] += 1
        read = reads["n"]
        await database.wait()
        return b"read %d" % read

    assert (await caches.page("status=live", page)).body == b"read 1"
    database.clear()
    caches.on_published(7, 3, "score:update", {"homeScore": 1}, None)
    served = await asyncio.gather(*(caches.page("status=live", page) for _ in range(10)))
    await eventually(lambda: reads["n"] == 2, what="the reload to start")
    assert {p.body for p in served} == {b"read 1"} and reads["n"] == 2  # one reload, no wait
    database.set()
    await eventually(lambda: caches.pages.lookup("status=live")[1], what="the reload to land")
    assert (await caches.page("status=live", page)).body == b"read 2"
    caches.on_change(7, 4)  # our own write: its writer's next read must show it
    assert caches.cached_page("status=live") is None
    assert (await caches.page("status=live", page)).body == b"read 3"
    caches.reference_written()
    assert (await caches.page("status=live", page)).body == b"read 4"
    caches.clear()  # a bus gap: nothing from before it is served
    assert (await caches.page("status=live", page)).body == b"read 5"
    caches.on_published(7, 5, "score:update", {"homeScore": 2}, None)
    # a page that must agree with a push (standings) is never served from before a change
    assert (await caches.page("status=live", page, serve_stale=False)).body == b"read 6"


async def test_the_writer_never_gets_a_page_read_before_its_own_write() -> None:
    """A reload started before our write commits reads the page without it: the
    writer's next read neither waits for that reload nor is served what it read."""
    state, gate = {"seq": 1, "loads": 0}, asyncio.Event()
    gate.set()
    caches = Caches(lambda match_id: asyncio.sleep(0, (1, b"")), match_ttl=60)
    key = (7, "commentary", "")
    load = sub_page_loader(state, gate)
    await caches.subpage(key, load)
    gate.clear()
    caches.on_published(7, 2, "score:update", {}, None)
    state["seq"] = 2
    before_write = await caches.subpage(key, load)  # served seq 1; its reload reads seq 2
    assert before_write.seq == 1
    await eventually(lambda: state["loads"] == 2, what="the reload to start")
    state["seq"] = 3
    await caches.written(7, 3)  # our commentary POST committed seq 3
    gate.set()
    mine = await caches.subpage(key, load)
    assert mine.body == b"page at 3" and state["loads"] == 3
    await eventually(lambda: not caches._subpage_loads._flights, what="the older reload")
    assert caches.subpages.lookup(key)[0] is mine  # the older read never replaces it


async def test_match_pages_go_stale_after_a_bus_gap_and_evict_the_least_recently_used() -> None:
    state, gate = {"seq": 1, "loads": 0}, asyncio.Event()
    gate.set()
    caches = Caches(lambda match_id: asyncio.sleep(0, (0, b"")), match_ttl=60)
    caches.subpages.max_entries = 2
    load = sub_page_loader(state, gate)
    for n in range(3):
        await caches.subpage((n, "commentary", ""), load)
    assert caches.subpages.lookup((0, "commentary", ""))[0] is None  # evicted
    assert caches.subpages.lookup((2, "commentary", ""))[1]
    caches.clear()  # the bus reconnected: changes may have been missed
    assert not caches.subpages.lookup((2, "commentary", ""))[1]


async def test_reference_lists_go_stale_by_ttl_a_created_match_or_a_gap_never_a_change() -> None:
    clock = FakeClock()
    caches = Caches(lambda match_id: asyncio.sleep(0, (0, b"")), match_ttl=60, clock=clock)
    reads = 0

    async def load() -> bytes:
        nonlocal reads
        reads += 1
        return b"read %d" % reads

    async def competitions() -> bytes:
        return (await caches.reference.get("/api/competitions", load)).body

    async def match_list() -> bytes:
        return (await caches.page("status=live", load)).body

    assert await competitions() == b"read 1" and await match_list() == b"read 2"
    caches.on_published(7, 3, "score:update", {"homeScore": 1}, None)
    caches.on_change(7, 4)  # our own write to a match
    assert await competitions() == b"read 1"  # a change of a match moves no reference list
    assert await match_list() == b"read 3"  # ...but any list page
    clock.advance(REFERENCE_TTL + 0.01)
    assert await competitions() == b"read 4"
    caches.reference_written()  # this node created a match (maybe a competition, teams)
    assert caches.reference.cached("/api/competitions") is None
    assert caches.cached_page("status=live") is None
    assert await competitions() == b"read 5"
    caches.clear()  # a bus gap
    assert caches.reference.cached("/api/competitions") is None
    assert await competitions() == b"read 6"
    assert caches.loads()["reference"] == 4 and caches.loads()["pages"] == 2
