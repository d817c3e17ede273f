"""Adaptive polling cadence (pure).

A feed is polled every ``poll_live_s`` while a match it covers is live or
about to start (hot), every ``poll_idle_s`` otherwise, and never faster than
its request budget allows: each poll may cost a list request plus a few
by-id requests, so the interval is at least ``60 / budget * REQUESTS_PER_POLL``.

Polls are numbered by *slot* (``floor(epoch / interval)``): every worker
computes the same slot for the same tick, which is what the job key and the
poll claim dedupe on.
"""

from __future__ import annotations

import math
from datetime import datetime

from livescore.feeds import FeedConfig

#: requests one poll may spend (the list + by-id fetches of vanished matches)
REQUESTS_PER_POLL = 2


def interval(feed: FeedConfig, *, hot: bool, budget_per_minute: int | None) -> float:
    """Seconds between two polls of ``feed``."""
    base = feed.poll_live_s if hot else feed.poll_idle_s
    if budget_per_minute:
        base = max(base, 60.0 / budget_per_minute * REQUESTS_PER_POLL)
    return base


def slot(now: datetime, seconds: float) -> int:
    """The poll slot ``now`` falls in for an interval of ``seconds``."""
    return math.floor(now.timestamp() / seconds)
