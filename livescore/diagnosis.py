"""Is everything flowing, and if not, where is it stuck? The judgement of
``livescore status`` (and of the feed part of ``/health``), as a pure function
over what was read: no I/O here, so every rule is a table-driven unit test.

A problem has a ``code`` (stable, for scripts) and a ``message`` that says
what is wrong and what to look at next. ``judge`` returns them in a fixed
order; no problems means healthy (exit 0).

=================== ==========================================================
code                when
=================== ==========================================================
``postgres_down``   PostgreSQL could not be read
``redis_down``      Redis could not be read
``no_worker``       no ``livescore worker`` heartbeat (nothing polls, nothing
                    publishes)
``worker_stuck``    a worker's loop (or the worker itself) stopped beating
``relay_stalled``   the oldest unpublished change is older than the threshold
``feed_failing``    an enabled feed failed ``feed_failing_after`` polls in a row
``stale_matches``   in-play matches no feed has freshly observed
=================== ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ProblemCode = Literal[
    "postgres_down",
    "redis_down",
    "no_worker",
    "worker_stuck",
    "relay_stalled",
    "feed_failing",
    "stale_matches",
]

#: An enabled feed whose last this many polls failed is failing.
FEED_FAILING_AFTER = 3


@dataclass(frozen=True, slots=True)
class Problem:
    code: ProblemCode
    message: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class FeedView:
    """What the judgement needs of one feed."""

    name: str
    enabled: bool
    failures_in_row: int
    last_error: str | None = None
    #: seconds since the last success (None: never succeeded)
    since_success_s: float | None = None


@dataclass(frozen=True, slots=True)
class WorkerView:
    id: str
    stuck_loops: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Observed:
    """Everything read for one judgement; ``None``: could not be read."""

    feeds: list[FeedView] | None = None
    workers: list[WorkerView] | None = None
    relay_backlog: int | None = None
    relay_oldest_age_s: float | None = None
    stale_live: int | None = None
    stale_ids: tuple[int, ...] = ()
    #: what could not be read, by source ("postgres", "redis"): the error
    unreadable: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Thresholds:
    relay_stall_after_s: float = 10.0
    feed_failing_after: int = FEED_FAILING_AFTER


def feed_failing(feed: FeedView, failing_after: int = FEED_FAILING_AFTER) -> Problem | None:
    """The problem of one feed, if it is enabled and failing."""
    if not feed.enabled or feed.failures_in_row < failing_after:
        return None
    since = (
        "never succeeded"
        if feed.since_success_s is None
        else f"last success {feed.since_success_s:.0f}s ago"
    )
    last = f"; last error: {feed.last_error}" if feed.last_error else ""
    return Problem(
        "feed_failing",
        f"feed {feed.name} failing: {feed.failures_in_row} polls in a row, {since}{last} "
        f"(check `livescore providers check {feed.name}`)",
    )


def judge(observed: Observed, thresholds: Thresholds) -> list[Problem]:
    problems: list[Problem] = []
    sources: tuple[tuple[str, ProblemCode], ...] = (
        ("postgres", "postgres_down"),
        ("redis", "redis_down"),
    )
    for source, code in sources:
        error = observed.unreadable.get(source)
        if error is not None:
            problems.append(Problem(code, f"{source} could not be read: {error}"))
    if observed.workers is not None:
        if not observed.workers:
            problems.append(
                Problem(
                    "no_worker",
                    "no worker alive: nothing polls the feeds or publishes changes "
                    "(start `livescore worker`)",
                )
            )
        for worker in observed.workers:
            if worker.stuck_loops:
                problems.append(
                    Problem(
                        "worker_stuck",
                        f"worker {worker.id}: no heartbeat from "
                        f"{', '.join(worker.stuck_loops)} (event loop blocked or paused?)",
                    )
                )
    age = observed.relay_oldest_age_s
    if age is not None and age > thresholds.relay_stall_after_s:
        problems.append(
            Problem(
                "relay_stalled",
                f"relay stalled: {observed.relay_backlog} change(s) unpublished, the oldest "
                f"for {age:.1f}s (more than {thresholds.relay_stall_after_s:g}s); "
                "is a worker running its relay?",
            )
        )
    for feed in observed.feeds or []:
        problem = feed_failing(feed, thresholds.feed_failing_after)
        if problem is not None:
            problems.append(problem)
    if observed.stale_live:
        ids = ", ".join(str(i) for i in observed.stale_ids)
        more = "" if len(observed.stale_ids) >= observed.stale_live else ", ..."
        problems.append(
            Problem(
                "stale_matches",
                f"{observed.stale_live} live match(es) stale, no feed observed them lately "
                f"(ids {ids}{more}); check their feeds or set an override",
            )
        )
    return problems
