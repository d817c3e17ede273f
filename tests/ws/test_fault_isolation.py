"""One bad row costs only its match, and a stalled relay shows in /health (issue 10).

Against a real ``livescore serve`` node, the real relay and real WebSocket
clients: a change that cannot be published (a row written before the write
path's limits, here one over the relay's publish limit) holds its match while
a subscriber of another match keeps receiving changes; /health reports the
held match; ``livescore relay release --skip`` lets it go again. The
over-deep metadata that used to stop the relay is refused with a 422 and
nothing is written.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import redis.asyncio as aioredis
from psycopg.types.json import Jsonb

from livescore.keys import Keys
from pipeline.relay import MAX_PUBLISH_BYTES, Relay
from store.apikeys import create_key
from store.db import CHANGES_CHANNEL, Conn, Pool
from tests.conftest import Services
from tests.edge.conftest import EdgeNode, auth
from tests.factories import Factory
from tests.waiting import eventually
from tests.ws.conftest import EdgeFactory, RelayRunner
from tests.ws.helpers import WsClient, current_seq, play, ws_url


def health(node: EdgeNode) -> tuple[int, dict[str, object]]:
    response = httpx.get(f"{node.url}/health", timeout=5.0)
    return response.status_code, response.json()


async def poison(conn: Conn, match_id: int) -> int:
    """Append a change that cannot be published, as a row stored before the
    write limits existed would be (straight SQL: apply_change refuses it)."""
    seq = await current_seq(conn, match_id) + 1
    big = {"note": "x" * (MAX_PUBLISH_BYTES + 10)}
    await conn.execute("UPDATE matches SET seq = %s WHERE id = %s", (seq, match_id))
    await conn.execute(
        "INSERT INTO match_changes (match_id, seq, type, payload, source) "
        "VALUES (%s, %s, 'match:update', %s, 'legacy')",
        (match_id, seq, Jsonb(big)),
    )
    await conn.execute("SELECT pg_notify(%s, %s)", (CHANGES_CHANNEL, str(match_id)))
    return seq


async def post_commentary(
    node: EdgeNode, match_id: int, api_key: str, metadata: object
) -> httpx.Response:
    body = {"minute": 3, "type": "text", "message": "hi", "metadata": metadata}
    async with httpx.AsyncClient(timeout=10.0) as client:
        return await client.post(
            f"{node.url}/api/matches/{match_id}/commentary",
            content=orjson.dumps(body),
            headers={**auth(api_key), "Content-Type": "application/json"},
        )


def livescore(services: Services, prefix: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [os.path.join(os.path.dirname(sys.executable), "livescore"), *args]
    return subprocess.run(
        command,
        env=services.env(LIVESCORE_REDIS_PREFIX=prefix),
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_an_unpublishable_change_holds_only_its_match_and_health_reports_it(
    edges: EdgeFactory,
    relay: Relay,
    factory: Factory,
    pool: Pool,
    services: Services,
) -> None:
    (node,) = edges(1)
    bad = (await factory.match())["id"]
    good = (await factory.match())["id"]
    async with WsClient(ws_url(node)) as client:
        await client.request({"action": "subscribe", "matchId": good})
        async with pool.connection() as conn:
            held_seq = await poison(conn, bad)
            await play(conn, bad, 1)  # waits behind the held change
            for step in range(1, 4):
                await play(conn, good, step)
            final = await current_seq(conn, good)
        await eventually(lambda: client.position(good) == final, 10, "the good match's changes")
        assert client.seqs(good) == list(range(1, final + 1))

    await eventually(lambda: health(node)[1]["status"] == "degraded", 10, "a degraded /health")
    status, body = health(node)
    assert status == 200  # every other match flows: the node keeps serving
    relay_check = body["checks"]["relay"]  # type: ignore[index]
    held = [h for h in relay_check["held"] if h["matchId"] == bad]
    assert held and held[0]["seq"] == held_seq
    assert "publish limit" in held[0]["reason"]
    assert any(str(bad) in note for note in body["problems"])  # type: ignore[union-attr]

    listed = livescore(services, relay.keys.prefix, "relay", "held")
    assert listed.returncode == 0, listed.stderr
    assert f"match {bad} held at seq {held_seq}" in listed.stdout

    released = livescore(
        services, relay.keys.prefix, "relay", "release", str(bad), "--skip", str(held_seq)
    )
    assert released.returncode == 0, released.stderr
    assert f"match {bad} released" in released.stdout
    async with pool.connection() as conn:

        async def published_after_hold() -> bool:
            cur = await conn.execute(
                "SELECT count(*) AS n FROM match_changes "
                "WHERE match_id = %s AND seq > %s AND published_at IS NULL",
                (bad, held_seq),
            )
            row = await cur.fetchone()
            return row is not None and row["n"] == 0

        await eventually(
            published_after_hold, 10, "the released match's later change to be published", every=0.1
        )


async def test_over_deep_or_oversized_metadata_is_refused_and_nothing_is_written(
    edges: EdgeFactory, factory: Factory, pool: Pool
) -> None:
    (node,) = edges(1)
    match_id = (await factory.match())["id"]
    async with pool.connection() as conn:
        api_key = (await create_key(conn, f"test-{secrets.token_hex(4)}")).plain
        before = await current_seq(conn, match_id)
    for depth in (17, 252, 253):
        metadata: object = 1
        for _ in range(depth):
            metadata = {"a": metadata}
        response = await post_commentary(node, match_id, api_key, metadata)
        assert response.status_code == 422, (depth, response.text)
        errors = response.json()["error"]["details"]["errors"]
        assert errors[0]["field"] == "metadata"
        assert "at most 16 levels" in errors[0]["message"]
    async with pool.connection() as conn:
        assert await current_seq(conn, match_id) == before
    huge = {"blob": "y" * 20_000}
    response = await post_commentary(node, match_id, api_key, huge)
    assert response.status_code == 422
    assert "at most 16384 are accepted" in response.text


async def test_a_relay_backlog_older_than_the_threshold_makes_health_503_until_it_drains(
    edges: EdgeFactory,
    factory: Factory,
    pool: Pool,
    make_relay: RelayRunner,
    redis: aioredis.Redis,
    keys: Keys,
) -> None:
    (node,) = edges(1, LIVESCORE_RELAY_STALL_AFTER="2")
    match_id = (await factory.match())["id"]
    async with pool.connection() as conn:
        # anything unpublished from earlier tests in this run is published first
        await conn.execute(
            "UPDATE match_changes SET published_at = now() WHERE published_at IS NULL"
        )
        await play(conn, match_id, 1)  # no relay runs on this prefix yet
    await eventually(lambda: health(node)[0] == 503, 15, "/health to notice the stalled relay")
    body = health(node)[1]
    assert "relay stalled" in body["error"]["message"]  # type: ignore[index]
    assert body["checks"]["relay"]["ok"] is False  # type: ignore[index]
    await make_relay(redis, keys)
    await eventually(lambda: health(node)[0] == 200, 15, "/health to recover once published")


def start_worker(services: Services, keys: Keys, log_path: Path) -> subprocess.Popen[bytes]:
    """A real ``livescore worker`` (cron, polls, relay) on this test's prefix."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), "livescore"), "worker"],
            env=services.env(LIVESCORE_REDIS_PREFIX=keys.prefix),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def test_a_paused_worker_is_named_by_health_within_seconds_and_cleared_when_it_resumes(
    edges: EdgeFactory, services: Services, keys: Keys, tmp_path: Path
) -> None:
    (node,) = edges(1)
    log_path = tmp_path / "worker.log"
    worker = start_worker(services, keys, log_path)
    try:

        def processes() -> list[dict[str, object]]:
            return health(node)[1]["checks"]["workers"]["processes"]  # type: ignore[index,no-any-return]

        await eventually(lambda: len(processes()) == 1, 30, "the worker's heartbeat")
        (proc,) = processes()
        assert proc["ok"] is True
        assert {"relay", "heartbeat"} <= set(proc["loops"])  # type: ignore[arg-type]
        worker.send_signal(signal.SIGSTOP)
        await eventually(lambda: health(node)[0] == 503, 15, "/health to name the silent worker")
        # named while its heartbeat key still lives (PROCESS_TTL_S after its last beat;
        # later, the worker would be gone, not named): "within seconds" without a bound
        # of the test's own that load could break
        message = health(node)[1]["error"]["message"]  # type: ignore[index]
        assert f"loop heartbeat of {proc['id']}" in message
        worker.send_signal(signal.SIGCONT)
        await eventually(lambda: health(node)[0] == 200, 15, "/health to clear once it beats")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0, log_path.read_text()
        await eventually(lambda: processes() == [], 5, "a stopped worker to leave /health")
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGCONT)
            worker.kill()
            worker.wait()


async def test_a_late_cron_tick_while_a_worker_runs_makes_health_503_naming_the_tick(
    edges: EdgeFactory, redis: aioredis.Redis, keys: Keys
) -> None:
    """The tick is a SAQ cron job, not a loop of ours: it stamps ``beat:tick`` each
    time it runs, and a worker that has been up long enough to tick says so in
    its heartbeat. Both are written here as a worker would write them (the
    heartbeat as one from before the workers' index: the edge finds it by a scan)."""
    (node,) = edges(1)
    now = time.time()
    worker = {"id": "worker-test", "kind": "worker", "started": now - 60, "at": now + 60}
    await redis.set(keys.process("worker-test"), orjson.dumps(worker | {"loops": {}}), ex=60)
    await redis.set(keys.tick_beat, str(now - 30))
    await eventually(lambda: health(node)[0] == 503, 10, "/health to notice the late tick")
    assert "cron tick late" in health(node)[1]["error"]["message"]  # type: ignore[index]
    await redis.set(keys.tick_beat, str(time.time() + 60))  # it ran (and stays fresh)
    await eventually(lambda: health(node)[0] == 200, 10, "/health to clear once it ticks")
    await redis.delete(keys.process("worker-test"))
