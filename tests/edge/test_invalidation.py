"""One cache invalidation for all nodes: a change committed through apply_change and
published on the changes channel (as the relay does) is visible on every node
at once, through the bus (long before a cached entry could expire), and a reader
never sees a match's seq go backwards.

How fast "at once" is on an idle machine (tens of milliseconds) is the fan-out
benchmark's to measure (bench/); these tests hold the bus to a bound that a
loaded machine keeps, yet that only the bus can meet: see ``VISIBLE_WITHIN``."""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from livescore.model import (
    Clock,
    EventType,
    MatchPatch,
    MatchState,
    MatchStatus,
    NewEvent,
    Period,
)
from store.db import Conn, Pool
from store.matches import get_match
from store.writes import PatchFn, apply_change
from tests.edge.conftest import EdgeNode, EdgeServers, publish
from tests.factories import Factory
from tests.waiting import eventually

pytestmark = pytest.mark.slow

#: A node's match entries expire after 2 s (``edge.cache.Caches``' ``match_ttl``):
#: without the bus, that is when a change would show.
MATCH_TTL_S = 2.0
#: The bound on publish-to-visible here: ten times the 100 ms the bus keeps to on
#: an idle machine, so load cannot break it, and half the TTL, so a broken bus
#: still does (each round re-reads a fresh entry: the TTL alone shows a change
#: nearly 2 s after its publication).
VISIBLE_WITHIN = 1.0


def one_more_goal(state: MatchState) -> MatchPatch:
    return MatchPatch(source="test", home_score=state.home_score + 1, away_score=state.away_score)


def varied(n: int) -> PatchFn:
    """Every kind of change in turn, some patches making several changes at once."""

    def patch(state: MatchState) -> MatchPatch:
        minute = 10 + n
        if n % 4 == 0:
            return one_more_goal(state)
        if n % 4 == 1:
            return MatchPatch(
                source="test",
                status=MatchStatus.HALFTIME,
                clock=Clock(45, 2, Period.HALFTIME),
                stats={"possession": [50 + n, 50 - n]},
            )
        if n % 4 == 2:
            return MatchPatch(
                source="test",
                new_events=(NewEvent(type=EventType.GOAL, minute=minute, side="away"),),
                home_score=state.home_score,
                away_score=state.away_score + 1,
                status=MatchStatus.LIVE,
                clock=Clock(minute, None, Period.SECOND_HALF),
            )
        return MatchPatch(source="test", start_time=state.start_time + timedelta(minutes=1))

    return patch


def normalized(match: dict[str, Any]) -> dict[str, Any]:
    return match | {"updatedAt": datetime.fromisoformat(match["updatedAt"])}


async def seq_on(http: httpx.AsyncClient, node: EdgeNode, match_id: int) -> int:
    response = await http.get(f"{node.url}/api/matches/{match_id}")
    assert response.status_code == 200, response.text
    seq = response.json()["data"]["seq"]
    assert isinstance(seq, int)
    return seq


async def wait_for_seq(
    http: httpx.AsyncClient, node: EdgeNode, match_id: int, seq: int, since: float
) -> float:
    """Poll until ``node`` serves ``seq``; the seconds since ``since``."""
    return (await first_with_seq(http, node, match_id, seq, since))[0]


async def first_with_seq(
    http: httpx.AsyncClient, node: EdgeNode, match_id: int, seq: int, since: float
) -> tuple[float, dict[str, Any]]:
    """Poll until ``node`` serves ``seq``: the seconds since ``since``, and that match."""

    async def served() -> dict[str, Any] | None:
        response = await http.get(f"{node.url}/api/matches/{match_id}")
        assert response.status_code == 200, response.text
        match: dict[str, Any] = response.json()["data"]
        return match if match["seq"] >= seq else None

    # polled every 2 ms: the time it took is what the tests measure; waited for past
    # the TTL, so a late change fails on its latency, which the failure shows
    match = await eventually(
        served, 2 * MATCH_TTL_S, f"{node.node_id} to serve seq {seq}", every=0.002
    )
    return time.perf_counter() - since, match


async def test_a_published_change_is_visible_on_both_nodes_through_the_bus_not_the_ttl(
    edge_server: EdgeServers, factory: Factory, conn: Conn, redis: aioredis.Redis
) -> None:
    nodes = edge_server.start(2)
    keys = nodes[0].keys
    match = await factory.match(status=MatchStatus.LIVE)
    latencies: list[float] = []
    async with httpx.AsyncClient() as http:
        for n in range(12):
            before = [await seq_on(http, node, match["id"]) for node in nodes]  # warm caches
            changes = await apply_change(conn, match["id"], varied(n))
            committed = time.perf_counter()
            # committed but not yet published: the nodes still answer from their caches
            assert [await seq_on(http, node, match["id"]) for node in nodes] == before
            published = time.perf_counter()
            await publish(redis, keys, changes)
            seen = [
                await first_with_seq(http, node, match["id"], changes[-1].seq, published)
                for node in nodes
            ]
            latencies += [latency for latency, _ in seen]
            assert committed <= published
            # the first answer with the new seq (patched from the message, most likely,
            # before the reload lands) is exactly the stored match
            stored = normalized(await get_match(conn, match["id"]))
            for _, served in seen:
                assert normalized(served) == stored
    assert max(latencies) < VISIBLE_WITHIN, latencies


async def test_seq_never_goes_backwards_while_a_writer_loops(
    edge_server: EdgeServers, factory: Factory, pool: Pool, redis: aioredis.Redis
) -> None:
    nodes = edge_server.start(2)
    keys = nodes[0].keys
    match = await factory.match(status=MatchStatus.LIVE)
    done = asyncio.Event()
    commits: list[tuple[int, float]] = []
    polls: dict[str, list[tuple[int, float]]] = {node.node_id: [] for node in nodes}

    async def read_twice_more() -> None:
        """Until every reader has polled twice since now: the writer never runs ahead
        of the readers, however slowly the loaded nodes answer."""
        marks = {node_id: len(seen) for node_id, seen in polls.items()}

        def polled() -> bool:
            return all(len(polls[node_id]) >= mark + 2 for node_id, mark in marks.items())

        await eventually(polled, 30, "every reader to poll twice")

    async def writer() -> None:
        async with pool.connection() as conn:
            for _ in range(40):
                changes = await apply_change(conn, match["id"], one_more_goal)
                await publish(redis, keys, changes)
                commits.append((changes[-1].seq, time.perf_counter()))
                await read_twice_more()
        done.set()

    async def reader(node: EdgeNode) -> list[tuple[int, float]]:
        seen = polls[node.node_id]
        async with httpx.AsyncClient() as http:  # one keep-alive connection, like a poller
            while not done.is_set():
                seen.append((await seq_on(http, node, match["id"]), time.perf_counter()))
            seen.append((await seq_on(http, node, match["id"]), time.perf_counter()))
        return seen

    results = await asyncio.gather(writer(), *(reader(node) for node in nodes))
    final_seq = commits[-1][0]
    for node, seen in zip(nodes, results[1:], strict=True):
        seqs = [seq for seq, _ in seen]
        assert len(seqs) > 40, f"{node.node_id} polled too little to prove anything"
        assert all(a <= b for a, b in itertools.pairwise(seqs)), f"{node.node_id}: {seqs}"
        assert seqs[-1] == final_seq
        # every change showed up on this node through the bus, not the TTL
        for seq, published in commits:
            first_seen = next(t for s, t in seen if s >= seq)
            assert first_seen - published < VISIBLE_WITHIN, (node.node_id, seq)


async def test_the_real_relay_invalidates_too(
    edge_server: EdgeServers, factory: Factory, pool: Pool, conn: Conn, redis: aioredis.Redis
) -> None:
    """End to end: apply_change -> NOTIFY -> pipeline relay -> Pub/Sub -> both nodes."""
    from pipeline.relay import Relay

    nodes = edge_server.start(2)
    match = await factory.match(status=MatchStatus.LIVE)
    relay = Relay(pool, "", redis, nodes[0].keys)
    await relay.drain()
    async with httpx.AsyncClient() as http:
        seqs = [await seq_on(http, node, match["id"]) for node in nodes]
        changes = await apply_change(conn, match["id"], one_more_goal)
        started = time.perf_counter()
        await relay.drain()
        for node in nodes:
            await wait_for_seq(http, node, match["id"], changes[-1].seq, started)
    assert changes[-1].seq == seqs[0] + 1


async def test_every_worker_of_a_node_hears_the_change(
    edge_server: EdgeServers, factory: Factory, conn: Conn, redis: aioredis.Redis
) -> None:
    """With --workers 2 each worker has its own cache and its own subscription."""
    (node,) = edge_server.start(1, workers=2)
    match = await factory.match(status=MatchStatus.LIVE)
    path = f"{node.url}/api/matches/{match['id']}"

    async def seqs() -> set[int]:
        # fresh connections land on either worker
        found = set()
        for _ in range(12):
            async with httpx.AsyncClient() as http:
                found.add((await http.get(path)).json()["data"]["seq"])
        return found

    before = await seqs()
    changes = await apply_change(conn, match["id"], one_more_goal)
    await publish(redis, node.keys, changes)

    async def both_heard() -> bool:
        return await seqs() == {changes[-1].seq}

    # within VISIBLE_WITHIN: half the TTL of the entries just read, so only the bus
    # can have told them
    await eventually(both_heard, VISIBLE_WITHIN, "every worker to serve the change")
    assert before == {changes[-1].seq - 1}
