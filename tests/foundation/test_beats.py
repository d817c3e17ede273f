"""Worker heartbeats in Redis (``livescore.beats``): every edge worker reads them
each second, through an index of the worker ids, never by scanning the
keyspace, except while the index is empty (workers from before it, in a
rolling upgrade). Real Redis, in process."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from livescore import beats
from livescore.keys import Keys
from livescore.supervise import Loops


async def beat(redis: aioredis.Redis, keys: Keys, *idents: str) -> None:
    """A heartbeat of each worker ``idents``, as ``livescore worker`` writes it."""
    for ident in idents:
        await beats.write_process(redis, keys, ident, "worker", time.time(), Loops())


@pytest.fixture
def no_scan(redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    def scan(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the keyspace was scanned")

    monkeypatch.setattr(redis, "scan", scan)
    monkeypatch.setattr(redis, "scan_iter", scan)


@pytest.mark.usefixtures("no_scan")
async def test_workers_heartbeats_are_found_through_the_index_without_a_scan(
    redis: aioredis.Redis, keys: Keys
) -> None:
    await beat(redis, keys, "worker-b", "worker-a")

    found = await beats.read_processes(redis, keys)

    assert [(p.id, p.kind) for p in found] == [("worker-a", "worker"), ("worker-b", "worker")]


@pytest.mark.usefixtures("no_scan")
async def test_a_worker_that_stops_leaves_the_index_and_the_reading(
    redis: aioredis.Redis, keys: Keys
) -> None:
    await beat(redis, keys, "worker-a", "worker-b")

    await beats.remove_process(redis, keys, "worker-a")

    assert [p.id for p in await beats.read_processes(redis, keys)] == ["worker-b"]
    assert await redis.zrange(keys.processes, 0, -1) == [b"worker-b"]


@pytest.mark.usefixtures("no_scan")
async def test_an_indexed_worker_whose_heartbeat_expired_is_not_reported(
    redis: aioredis.Redis, keys: Keys
) -> None:
    await beat(redis, keys, "worker-alive", "worker-killed")
    await redis.delete(keys.process("worker-killed"))  # its key expired: killed outright

    assert [p.id for p in await beats.read_processes(redis, keys)] == ["worker-alive"]


async def test_ids_expired_a_ttl_ago_are_pruned_by_the_next_write(
    redis: aioredis.Redis, keys: Keys
) -> None:
    long_ago = time.time() - 2 * beats.PROCESS_TTL_S
    await redis.zadd(keys.processes, {"worker-gone": long_ago})

    await beat(redis, keys, "worker-a")

    assert await redis.zrange(keys.processes, 0, -1) == [b"worker-a"]
    assert 0 < await redis.ttl(keys.processes) <= beats.INDEX_TTL_S


async def test_while_the_index_is_empty_a_heartbeat_without_one_is_found_by_a_scan(
    redis: aioredis.Redis, keys: Keys
) -> None:
    now = time.time()
    older = {"id": "worker-old", "kind": "worker", "started": now, "at": now, "loops": {}}
    await redis.set(keys.process("worker-old"), orjson.dumps(older), ex=60)

    assert [p.id for p in await beats.read_processes(redis, keys)] == ["worker-old"]


@pytest.mark.usefixtures("no_scan")
async def test_a_garbled_index_member_costs_only_itself(redis: aioredis.Redis, keys: Keys) -> None:
    await beat(redis, keys, "worker-a")
    await redis.zadd(keys.processes, {b"\xff\xfe not text": time.time() + 60})

    assert [p.id for p in await beats.read_processes(redis, keys)] == ["worker-a"]
