"""/health costs nothing per request (issue 18 part 2): it answers from the
watch loop's latest reading, says how old it is, and a reading that stopped
refreshing is itself a 503.

The rules of ``edge.health.report`` over a reading are plain-function tests
(a reading built by hand, a clock passed in); the cost is measured on a real
node: PostgreSQL transactions while it answers many /health probes."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import httpx
import orjson

from edge.health import REUSE_S, Answers, report
from edge.watch import STALE_AFTER_S, Reading
from livescore.feed_health import FeedState
from livescore.keys import Keys
from store.changes import Backlog
from store.db import Conn
from tests.edge.conftest import EdgeNode

NOW = 1_800_000_000.0


def fake_edge(reading: Reading) -> Any:
    return SimpleNamespace(
        settings=SimpleNamespace(node_id="edge-t", relay_stall_after_s=10),
        keys=Keys("t"),
        bus=SimpleNamespace(connected=True),
        loops=SimpleNamespace(reports=lambda: []),
        watch=SimpleNamespace(reading=reading),
    )


def fresh(**changes: Any) -> Reading:
    reading = Reading(
        at=NOW - 0.4,
        postgres={"ok": True, "latencyMs": 1.0},
        redis={"ok": True, "latencyMs": 0.5},
        queue_depth=3,
        backlog=Backlog(0, None, []),
        stale=1,
        workers=[],
        feeds=[FeedState("fd", last_success=NOW - 20)],
    )
    for name, value in changes.items():
        setattr(reading, name, value)
    return reading


def test_health_answers_from_the_reading_and_says_how_old_it_is() -> None:
    status, body = report(fake_edge(fresh()), now=NOW)
    assert status == 200 and body["status"] == "ok"
    assert body["checkedSecondsAgo"] == 0.4
    assert body["staleMatches"] == 1
    assert body["checks"]["queue"] == {"ok": True, "name": "t:jobs", "depth": 3}
    assert body["checks"]["feeds"]["fd"]["ok"] is True
    assert body["checks"]["feeds"]["fd"]["lastSuccessSecondsAgo"] == 20.0


def test_a_reading_older_than_the_limit_is_itself_a_503() -> None:
    old = fresh(at=NOW - STALE_AFTER_S - 0.5)
    status, body = report(fake_edge(old), now=NOW)
    assert status == 503 and body["status"] == "unavailable"
    assert "health checks not refreshed for 7.5s" in body["error"]["message"]
    assert report(fake_edge(fresh(at=NOW - STALE_AFTER_S + 0.5)), now=NOW)[0] == 200
    never = Reading()  # nothing read yet
    status, body = report(fake_edge(never), now=NOW)
    assert status == 503 and body["checkedSecondsAgo"] is None


def test_the_same_faults_are_503_from_a_reading() -> None:
    down = fresh(postgres={"ok": False, "error": "OperationalError"}, stale=None)
    status, body = report(fake_edge(down), now=NOW)
    assert status == 503 and body["error"]["details"]["down"] == ["postgres"]
    assert body["staleMatches"] is None
    stalled = fresh(backlog=Backlog(4, 11.0, []))
    status, body = report(fake_edge(stalled), now=NOW)
    assert status == 503 and "relay stalled" in body["error"]["message"]


def test_a_failing_feed_degrades_without_failing_the_node() -> None:
    failing = FeedState("fd-eu", failures_in_row=3, last_error="HTTP 503", last_success=None)
    status, body = report(fake_edge(fresh(feeds=[failing])), now=NOW)
    assert status == 200 and body["status"] == "degraded"
    assert body["checks"]["feeds"]["fd-eu"]["ok"] is False
    (note,) = body["problems"]
    assert note.startswith("feed fd-eu failing: 3 polls in a row, never succeeded")


def test_probes_share_one_encoded_answer_until_the_reading_or_the_bus_changes() -> None:
    edge, answers = fake_edge(fresh()), Answers()
    first = answers.get(edge, monotonic=100.0, now=NOW)
    body = orjson.loads(first.body)
    assert first.status == 200 and body["status"] == "ok" and body["checkedSecondsAgo"] == 0.4
    assert answers.get(edge, monotonic=100.0 + REUSE_S / 2, now=NOW + 0.05) is first
    assert answers.made == 1
    edge.watch.reading = fresh(at=NOW + 0.5)  # the watch took a new reading
    second = answers.get(edge, monotonic=100.0 + REUSE_S / 2, now=NOW + 0.6)
    assert second is not first and orjson.loads(second.body)["checkedSecondsAgo"] == 0.1
    edge.bus.connected = False  # the bus dropped: said at once
    assert orjson.loads(answers.get(edge, 100.0 + REUSE_S / 2).body)["checks"]["bus"] == {
        "ok": False
    }
    edge.watch.reading = fresh(at=NOW - STALE_AFTER_S)  # the watch stops reading...
    third = answers.get(edge, monotonic=101.0, now=NOW)
    # ...then the ages it states grow, and the answer turns 503, within REUSE_S
    later = answers.get(edge, monotonic=101.0 + REUSE_S, now=NOW + 1.0)
    assert (third.status, later.status) == (200, 503) and answers.made == 5


async def xact_commits(conn: Conn) -> int:
    cur = await conn.execute(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row["xact_commit"])


async def test_many_probes_cost_no_database_transaction_each(edge: EdgeNode, conn: Conn) -> None:
    probes = 300
    async with httpx.AsyncClient(base_url=edge.url, timeout=10) as http:
        before, started = await xact_commits(conn), time.monotonic()
        for _ in range(probes):
            response = await http.get("/health")
            assert response.status_code == 200
            assert 0 <= response.json()["checkedSecondsAgo"] < STALE_AFTER_S
        after, elapsed = await xact_commits(conn), time.monotonic() - started
    # What commits without a probe: the watch loop's reading (a few statements a
    # second) and whatever else the run's other tests commit. Measured, as a rate
    # over as long as the probes took (at most 5 s), since on a loaded machine the
    # probes take many seconds; a rate has no event to wait for.
    sample_s = min(elapsed, 5.0)
    quiet_before, quiet_started = await xact_commits(conn), time.monotonic()
    await asyncio.sleep(sample_s)
    quiet = await xact_commits(conn) - quiet_before
    background = quiet / (time.monotonic() - quiet_started) * elapsed
    # one transaction per probe would add >= 300 on top of it
    assert after - before - background < probes / 2, (after - before, background, elapsed)
