"""Process heartbeats in Redis: how an edge node's ``/health`` sees the
workers' loops (the relay, the cron tick) that run in other processes.

Each ``livescore worker`` writes ``Keys.process(id)`` every
``PROCESS_BEAT_S`` seconds: its start time and its supervised loops' reports
(``livescore.supervise``), with an expiry of ``PROCESS_TTL_S``. A worker that
stops cleanly deletes it; one killed outright vanishes when the key expires.
Its id goes in the index ``Keys.processes`` too (scored by the heartbeat's
expiry; ids expired a TTL ago are pruned by every write), so a reader, every
edge worker each second, finds the heartbeats with one ZRANGE and one MGET
instead of a SCAN of the whole keyspace (thousands of round trips on a big
shared Redis). While the index is empty (no worker running, or only workers
from before it, in a rolling upgrade), readers SCAN as they used to.
The cron tick, which runs on whichever worker takes it, stamps
``Keys.tick_beat`` each time it runs.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.asyncio as aioredis

from livescore.keys import Keys
from livescore.supervise import Loops

#: How often a worker writes its heartbeat, and how long the key lives.
PROCESS_BEAT_S = 2.0
PROCESS_TTL_S = 15
#: A process whose last heartbeat is older than this is stuck (until its key expires).
PROCESS_SILENT_AFTER_S = 3 * PROCESS_BEAT_S
#: The cron tick runs every 5 s; later than this it is reported stuck.
TICK_STUCK_AFTER_S = 20.0


@dataclass(slots=True)
class ProcessBeat:
    id: str
    kind: str
    started: float
    at: float
    loops: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: what else the process says of itself (a worker: ``relayLeader``, ``relayLag``)
    extra: dict[str, Any] = field(default_factory=dict)

    def stuck_loops(self, now: float) -> list[str]:
        """Loops that reported themselves stuck, or ``heartbeat`` when the process
        itself stopped writing (paused, its event loop blocked)."""
        stuck = sorted(name for name, report in self.loops.items() if not report.get("ok"))
        if now - self.at > PROCESS_SILENT_AFTER_S and "heartbeat" not in stuck:
            stuck.append("heartbeat")
        return stuck


def process_id(kind: str) -> str:
    return f"{kind}-{socket.gethostname()}-{os.getpid()}"


async def write_process(
    redis: aioredis.Redis,
    keys: Keys,
    ident: str,
    kind: str,
    started: float,
    loops: Loops,
    extra: dict[str, Any] | None = None,
) -> None:
    body = {
        "id": ident,
        "kind": kind,
        "started": started,
        "at": time.time(),
        "loops": {report.name: report.to_json() for report in loops.reports()},
        "extra": extra or {},
    }
    now = time.time()
    pipe = redis.pipeline(transaction=False)
    pipe.set(keys.process(ident), orjson.dumps(body), ex=PROCESS_TTL_S)
    pipe.zadd(keys.processes, {ident: now + PROCESS_TTL_S})
    pipe.zremrangebyscore(keys.processes, "-inf", now - PROCESS_TTL_S)
    pipe.expire(keys.processes, INDEX_TTL_S)
    await pipe.execute()


#: The index outlives its last writer by this long (seconds), then goes.
INDEX_TTL_S = 3600


async def remove_process(redis: aioredis.Redis, keys: Keys, ident: str) -> None:
    pipe = redis.pipeline(transaction=False)
    pipe.delete(keys.process(ident))
    pipe.zrem(keys.processes, ident)
    await pipe.execute()


async def read_processes(redis: aioredis.Redis, keys: Keys) -> list[ProcessBeat]:
    """Every process whose heartbeat has not expired."""
    names = await process_names(redis, keys)
    return parse_processes(await redis.mget(names)) if names else []


#: Keys a SCAN step looks at (``process_names``, while the index is empty).
SCAN_COUNT = 100


def queue_index(pipe: aioredis.client.Pipeline, keys: Keys) -> None:
    """Add the read of the index to ``pipe``; its reply goes to
    ``process_names(..., indexed=reply)``."""
    pipe.zrange(keys.processes, 0, -1)


async def process_names(
    redis: aioredis.Redis, keys: Keys, indexed: list[bytes | str] | None = None
) -> list[str]:
    """The heartbeat keys of the indexed processes (``indexed``: the index as read
    already); a SCAN of the keyspace only while the index is empty."""
    if indexed is None:
        indexed = await redis.zrange(keys.processes, 0, -1)
    if indexed:
        return [keys.process(_text(ident)) for ident in indexed]
    pattern = keys.process("*")
    return [_text(name) async for name in redis.scan_iter(match=pattern, count=SCAN_COUNT)]


def _text(raw: bytes | str) -> str:
    """A key or id as text; one that is not UTF-8 (not ours) becomes a name no key
    has, so it reads as missing instead of failing the whole reading."""
    return raw.decode(errors="replace") if isinstance(raw, bytes) else raw


def parse_processes(raws: list[bytes | None]) -> list[ProcessBeat]:
    """The heartbeats among ``raws`` (MGET's answer), by id."""
    found: list[ProcessBeat] = []
    for raw in raws:
        if raw is None:
            continue  # expired between the scan and the read
        try:
            body = orjson.loads(raw)
            found.append(
                ProcessBeat(
                    str(body["id"]),
                    str(body["kind"]),
                    float(body["started"]),
                    float(body["at"]),
                    dict(body.get("loops") or {}),
                    dict(body.get("extra") or {}),
                )
            )
        except (ValueError, KeyError, TypeError):
            continue  # not ours (a foreign key under our prefix): nothing to report
    return sorted(found, key=lambda beat: beat.id)


async def mark_tick(redis: aioredis.Redis, keys: Keys) -> None:
    await redis.set(keys.tick_beat, str(time.time()), ex=3600)


async def last_tick(redis: aioredis.Redis, keys: Keys) -> float | None:
    return parse_tick(await redis.get(keys.tick_beat))


def parse_tick(raw: bytes | str | None) -> float | None:
    """The tick's stamp as read (None: never, or garbled)."""
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


def tick_stuck(workers: list[ProcessBeat], tick_at: float | None, now: float) -> bool:
    """True when a worker has been up long enough to tick and the tick is late."""
    if not workers:
        return False  # nobody could run it: that is "no worker", not a stuck tick
    up_since = min(worker.started for worker in workers)
    if now - up_since < TICK_STUCK_AFTER_S:
        return False
    return tick_at is None or now - tick_at > TICK_STUCK_AFTER_S


# -- edge nodes ----------------------------------------------------------------------
#: How often each edge worker process writes its node heartbeat, and how long it lives.
NODE_BEAT_S = 2.0
NODE_TTL_S = 10


@dataclass(slots=True)
class NodeBeat:
    """One edge worker process's heartbeat; a node is every process with its ``node``."""

    node: str
    pid: int
    started: float
    at: float
    version: str
    connections: int
    subscriptions: int


async def write_node(redis: aioredis.Redis, keys: Keys, beat: NodeBeat) -> None:
    body = {
        "node": beat.node,
        "pid": beat.pid,
        "started": beat.started,
        "at": beat.at,
        "version": beat.version,
        "connections": beat.connections,
        "subscriptions": beat.subscriptions,
    }
    await redis.set(keys.node(f"{beat.node}:{beat.pid}"), orjson.dumps(body), ex=NODE_TTL_S)


async def remove_node(redis: aioredis.Redis, keys: Keys, node: str, pid: int) -> None:
    await redis.delete(keys.node(f"{node}:{pid}"))


async def read_nodes(redis: aioredis.Redis, keys: Keys) -> list[NodeBeat]:
    """Every edge worker process whose heartbeat has not expired."""
    names = [name async for name in redis.scan_iter(match=keys.node("*"), count=100)]
    found: list[NodeBeat] = []
    for raw in await redis.mget(names) if names else []:
        if raw is None:
            continue
        try:
            body = orjson.loads(raw)
            found.append(
                NodeBeat(
                    str(body["node"]),
                    int(body["pid"]),
                    float(body["started"]),
                    float(body["at"]),
                    str(body["version"]),
                    int(body["connections"]),
                    int(body["subscriptions"]),
                )
            )
        except (ValueError, KeyError, TypeError):
            continue  # not ours: nothing to report
    return sorted(found, key=lambda beat: (beat.node, beat.pid))


# -- failed jobs ---------------------------------------------------------------------
#: Failed job attempts are kept (and counted) for this long.
FAILED_WINDOW_S = 3600.0


async def mark_failed_job(redis: aioredis.Redis, keys: Keys, job_id: str, attempt: int) -> None:
    """Note one job attempt that raised; entries older than the window are dropped."""
    now = time.time()
    pipe = redis.pipeline(transaction=False)
    pipe.zadd(keys.failed_jobs, {f"{job_id}#{attempt}": now})
    pipe.zremrangebyscore(keys.failed_jobs, "-inf", now - FAILED_WINDOW_S)
    pipe.expire(keys.failed_jobs, int(FAILED_WINDOW_S))
    await pipe.execute()


async def failed_jobs(redis: aioredis.Redis, keys: Keys) -> int:
    """Job attempts that raised in the last hour."""
    return int(await redis.zcount(keys.failed_jobs, time.time() - FAILED_WINDOW_S, "+inf"))
