"""The judgement of ``livescore status`` (``livescore.diagnosis.judge``): each
rule as a table of what was read -> which problems, and nothing else."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from livescore.diagnosis import (
    FeedView,
    Observed,
    Thresholds,
    WorkerView,
    feed_failing,
    judge,
)

ALIVE = [WorkerView("worker-a")]
HEALTHY = Observed(
    feeds=[FeedView("fd", True, 0, None, 3.0)],
    workers=ALIVE,
    relay_backlog=0,
    relay_oldest_age_s=None,
    stale_live=0,
)
LIMITS = Thresholds(relay_stall_after_s=10.0, feed_failing_after=3)


def codes(observed: Observed, thresholds: Thresholds = LIMITS) -> list[str]:
    return [problem.code for problem in judge(observed, thresholds)]


def with_(**changes: Any) -> Observed:
    return replace(HEALTHY, **changes)


def test_everything_flowing_is_no_problem() -> None:
    assert judge(HEALTHY, LIMITS) == []


@pytest.mark.parametrize(
    ("observed", "expected"),
    [
        (with_(workers=[]), ["no_worker"]),
        # Redis unreadable: no worker list, so no "no worker" guess on top
        (with_(workers=None, unreadable={"redis": "ConnectionError"}), ["redis_down"]),
        (
            with_(feeds=None, stale_live=None, unreadable={"postgres": "OperationalError"}),
            ["postgres_down"],
        ),
        (with_(workers=[WorkerView("w", ("relay",))]), ["worker_stuck"]),
        (with_(relay_backlog=4, relay_oldest_age_s=10.5), ["relay_stalled"]),
        (with_(relay_backlog=4, relay_oldest_age_s=10.0), []),  # at the threshold: not yet
        (with_(feeds=[FeedView("fd", True, 3, "HTTP 500", 90.0)]), ["feed_failing"]),
        (with_(feeds=[FeedView("fd", True, 2, "HTTP 500", 90.0)]), []),
        (with_(feeds=[FeedView("fd", False, 9, "HTTP 500", None)]), []),  # disabled
        (with_(stale_live=2, stale_ids=(7, 9)), ["stale_matches"]),
        (
            with_(workers=[], relay_backlog=1, relay_oldest_age_s=60.0, stale_live=1),
            ["no_worker", "relay_stalled", "stale_matches"],
        ),
    ],
)
def test_each_fault_is_named_once_and_in_a_fixed_order(
    observed: Observed, expected: list[str]
) -> None:
    assert codes(observed) == expected


def test_the_thresholds_are_the_callers() -> None:
    slow = with_(relay_backlog=1, relay_oldest_age_s=30.0)
    assert codes(slow, Thresholds(relay_stall_after_s=60.0)) == []
    assert codes(slow, Thresholds(relay_stall_after_s=20.0)) == ["relay_stalled"]
    once = with_(feeds=[FeedView("fd", True, 1, "boom", None)])
    assert codes(once, Thresholds(feed_failing_after=1)) == ["feed_failing"]


def test_messages_say_what_is_wrong_and_where_to_look() -> None:
    (failing,) = judge(with_(feeds=[FeedView("fd-eu", True, 4, "HTTP 503", 125.0)]), LIMITS)
    assert "feed fd-eu failing: 4 polls in a row, last success 125s ago" in failing.message
    assert "last error: HTTP 503" in failing.message
    assert "livescore providers check fd-eu" in failing.message
    (never,) = judge(with_(feeds=[FeedView("fd", True, 3, None, None)]), LIMITS)
    assert "never succeeded" in never.message
    (none,) = judge(with_(workers=[]), LIMITS)
    assert "livescore worker" in none.message
    (stalled,) = judge(with_(relay_backlog=12, relay_oldest_age_s=42.0), LIMITS)
    assert "12 change(s) unpublished, the oldest for 42.0s (more than 10s)" in stalled.message
    (stale,) = judge(with_(stale_live=12, stale_ids=tuple(range(1, 11))), LIMITS)
    assert stale.message.startswith("12 live match(es) stale")
    assert "ids 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, ..." in stale.message
    assert judge(with_(stale_live=1, stale_ids=(5,)), LIMITS)[0].to_json() == {
        "code": "stale_matches",
        "message": "1 live match(es) stale, no feed observed them lately (ids 5); "
        "check their feeds or set an override",
    }


def test_feed_failing_alone_is_what_health_uses() -> None:
    assert feed_failing(FeedView("fd", True, 2, "x", 1.0)) is None
    problem = feed_failing(FeedView("fd", True, 3, "x", 1.0))
    assert problem is not None and problem.code == "feed_failing"
