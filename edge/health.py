"""GET /health: is this node able to serve, and is anything stuck.

Costs nothing per request (issue 18): PostgreSQL (and the count of stale live
matches), Redis (and the SAQ queue's depth), the relay's backlog, the
workers' heartbeats and each feed's poll record are read by this worker's
watch loop about every second (``edge.watch``); ``/health`` answers from the
latest reading, saying how old it is (``checkedSecondsAgo``). In memory, at
answer time: whether this worker's change bus is subscribed and its
supervised loops (``livescore.supervise``).

* 200 ``"status": "ok"``: nothing wrong.
* 200 ``"status": "degraded"``: serving, but a match is held by the relay
  (``checks.relay.held``), a feed is failing (``checks.feeds``, named in
  ``problems``), or part of the pipeline could not be read.
* 503 ``"status": "unavailable"``: PostgreSQL or Redis is down, a loop of
  this worker or of a worker process missed its heartbeat, the cron tick is
  late while workers run, the relay has left a change unpublished for longer
  than ``LIVESCORE_RELAY_STALL_AFTER``, or the checks themselves have not
  refreshed for ``edge.watch.STALE_AFTER_S`` seconds. The ``error`` member
  (the error envelope) names each reason in ``details.problems``.

A probe does not even build the report: ``Answers`` keeps the last one
encoded and makes it again only when the watch takes a new reading, the bus
connects or drops, or ``REUSE_S`` has passed (so the ages it states, and a
loop that stopped beating, are at most that late).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
from sanic import HTTPResponse, Request

from edge.framework import EncodedResponse
from edge.responses import JSON
from edge.state import EdgeState, state
from edge.watch import STALE_AFTER_S, Reading
from livescore import beats, clock, diagnosis

#: A probe's answer is about this moment: no cache may keep it.
NO_STORE = {"Cache-Control": "no-store"}


def _loops(edge: EdgeState, problems: list[str]) -> dict[str, Any]:
    reports = {}
    for loop in edge.loops.reports():
        reports[loop.name] = loop.to_json()
        if not loop.ok:
            problems.append(
                f"loop {loop.name} of this worker: no heartbeat for {loop.age:.1f}s"
                + (f" (last error: {loop.last_error})" if loop.last_error else "")
            )
    return reports


def _relay(edge: EdgeState, reading: Reading, problems: list[str]) -> dict[str, Any]:
    stall_after = edge.settings.relay_stall_after_s
    if reading.backlog is None:
        return {"ok": None, "stallAfterSeconds": stall_after}
    age = reading.backlog.oldest_age_s
    stalled = age is not None and age > stall_after
    if stalled:
        problems.append(
            f"relay stalled: {reading.backlog.count} change(s) unpublished, the oldest for "
            f"{age:.1f}s (more than {stall_after:g}s); is a `livescore worker` running?"
        )
    return {
        "ok": not stalled,
        "backlog": reading.backlog.count,
        "oldestUnpublishedSeconds": None if age is None else round(age, 2),
        "stallAfterSeconds": stall_after,
        "held": [held.to_json() for held in reading.backlog.held],
    }


def _workers(reading: Reading, now: float, problems: list[str]) -> dict[str, Any]:
    if reading.workers is None:
        return {"ok": None, "processes": None, "tickLastRunSecondsAgo": None}
    processes = []
    for worker in reading.workers:
        stuck = worker.stuck_loops(now)
        for name in stuck:
            problems.append(f"loop {name} of {worker.id}: no heartbeat")
        processes.append({"id": worker.id, "ok": not stuck, "loops": worker.loops})
    tick_late = reading.tick_stuck(now)
    if tick_late:
        problems.append(
            "cron tick late: workers run but the tick did not run for "
            f"{beats.TICK_STUCK_AFTER_S:g}s (job slots all busy?)"
        )
    tick_age = None if reading.tick_at is None else round(now - reading.tick_at, 2)
    return {
        "ok": not tick_late and all(p["ok"] for p in processes),
        "processes": processes,
        "tickLastRunSecondsAgo": tick_age,
    }


def _feeds(reading: Reading, now: float, notes: list[str]) -> dict[str, Any] | None:
    if reading.feeds is None:
        return None
    checks = {}
    for feed in reading.feeds:
        since = None if feed.last_success is None else round(now - feed.last_success, 1)
        failing = diagnosis.feed_failing(
            diagnosis.FeedView(feed.name, True, feed.failures_in_row, feed.last_error, since)
        )
        if failing is not None:
            notes.append(failing.message)
        checks[feed.name] = {
            "ok": failing is None,
            "lastSuccessSecondsAgo": since,
            "failuresInRow": feed.failures_in_row,
            "lastError": feed.last_error,
            "budgetLeft": feed.budget_left,
            "pausedForSeconds": round(feed.paused_for_s, 1),
        }
    return checks


def report(edge: EdgeState, now: float | None = None) -> tuple[int, dict[str, Any]]:
    """The answer, from the watch's latest reading and this worker's memory."""
    now = time.time() if now is None else now
    reading = edge.watch.reading if edge.watch is not None else Reading()
    age = reading.age(now)
    pg = reading.postgres or {"ok": False, "error": "not checked yet"}
    redis = reading.redis or {"ok": False, "error": "not checked yet"}
    problems: list[str] = []
    if age > STALE_AFTER_S:
        problems.append(
            f"health checks not refreshed for {age:.1f}s (more than {STALE_AFTER_S:g}s): "
            "this worker's watch loop is stuck"
        )
    down = [name for name, check in (("postgres", pg), ("redis", redis)) if not check["ok"]]
    if down:
        problems.append(f"{' and '.join(down)} unreachable from this node")
    notes: list[str] = []
    checks: dict[str, Any] = {
        "postgres": pg,
        "redis": redis,
        "queue": {
            "ok": bool(redis["ok"]),
            "name": edge.keys.queue_name,
            "depth": reading.queue_depth if redis["ok"] else None,
        },
        "bus": {"ok": edge.bus.connected},
        "loops": _loops(edge, problems),
        "relay": _relay(edge, reading, problems),
        "workers": _workers(reading, now, problems),
        "feeds": _feeds(reading, now, notes),
    }
    body: dict[str, Any] = {
        "status": "ok",
        "node": edge.settings.node_id,
        "time": clock.now().isoformat(),
        "checkedSecondsAgo": round(age, 3) if reading.at else None,
        "checks": checks,
        "staleMatches": reading.stale if pg["ok"] else None,
    }
    if problems:
        body["status"] = "unavailable"
        body["error"] = {
            "code": "dependency_down" if down else "stuck",
            "message": "; ".join(problems),
            "details": {"down": down, "problems": problems},
        }
        return 503, body
    notes[:0] = [f"{name}: {error}" for name, error in reading.errors.items()]
    held = checks["relay"].get("held") or []
    if held:
        notes.append(
            f"{len(held)} match(es) held by the relay (a change could not be published): "
            + ", ".join(str(h["matchId"]) for h in held)
            + "; see `livescore relay held`"
        )
    if notes:
        body["status"] = "degraded"
        body["problems"] = notes
    return 200, body


#: Seconds one encoded answer is served again (while the reading and the bus stay the same).
REUSE_S = 0.1


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    #: what it was made from, and until when (``time.monotonic``) it may be served
    reading: Reading | None
    bus_connected: bool
    until: float


class Answers:
    """One worker's latest encoded ``/health`` answer (see the module's docstring)."""

    def __init__(self) -> None:
        self.last: Answer | None = None
        #: answers made (each a report built and encoded), for tests and profiling
        self.made = 0

    def get(self, edge: EdgeState, monotonic: float, now: float | None = None) -> Answer:
        """The answer at ``monotonic`` (``time.monotonic()``); ``now``: the wall clock
        the report states its ages against (``time.time()`` unless given)."""
        reading = edge.watch.reading if edge.watch is not None else None
        connected = edge.bus.connected
        last = self.last
        if (
            last is not None
            and monotonic < last.until
            and last.reading is reading
            and last.bus_connected == connected
        ):
            return last
        status, body = report(edge, now)
        self.made += 1
        self.last = Answer(status, orjson.dumps(body), reading, connected, monotonic + REUSE_S)
        return self.last


async def health_route(request: Request) -> HTTPResponse:
    ctx = request.app.ctx
    answers: Answers | None = getattr(ctx, "health_answers", None)
    if answers is None:
        answers = ctx.health_answers = Answers()
    answer = answers.get(state(request), time.monotonic())
    return EncodedResponse(answer.body, status=answer.status, headers=NO_STORE, content_type=JSON)
