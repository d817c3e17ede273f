"""Each feed's poll record in Redis, shared by every worker and read by every
edge node and ``livescore status``.

A poll job ends in ``record_poll``: one hash per feed (``Keys.feed_state``)
holds the last poll's time, the last success's, the last error (its kind,
text and time), how many polls in a row failed, and running totals of polls
and of errors by kind. A success resets the run of failures. The totals only
grow (Redis keeps them, AOF-persisted), so ``/metrics`` exposes them as
counters: every edge node shows the same cluster-wide numbers.

``read_feeds`` adds what the budget and the pause keys say now: requests
taken in the last minute (the ``pipeline.budget.RedisBudget`` window) and how
long the feed stays paused.

Error kinds are the poll's outcome classes (``pipeline.jobs``): ``throttled``,
``credentials``, ``missing_secret``, ``payload``, ``unavailable``,
``provider``, ``internal``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from livescore.keys import Keys

#: Budget window, milliseconds (``pipeline.budget.RedisBudget``'s default).
BUDGET_WINDOW_MS = 60_000
#: Longest error text kept.
ERROR_CHARS = 300


@dataclass(slots=True)
class FeedState:
    """One feed's poll record plus its budget and pause, as read now."""

    name: str
    last_poll: float | None = None
    last_success: float | None = None
    last_error: str | None = None
    last_error_kind: str | None = None
    last_error_at: float | None = None
    failures_in_row: int = 0
    polls: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    #: requests taken in the last minute; the limit (None: no budget)
    budget_used: int = 0
    budget_limit: int | None = None
    paused_for_s: float = 0.0

    @property
    def budget_left(self) -> int | None:
        return None if self.budget_limit is None else max(self.budget_limit - self.budget_used, 0)

    def to_json(self) -> dict[str, Any]:
        return {
            "lastPoll": self.last_poll,
            "lastSuccess": self.last_success,
            "lastError": self.last_error,
            "lastErrorKind": self.last_error_kind,
            "lastErrorAt": self.last_error_at,
            "failuresInRow": self.failures_in_row,
            "polls": self.polls,
            "errors": dict(self.errors),
            "budgetUsed": self.budget_used,
            "budgetLimit": self.budget_limit,
            "budgetLeft": self.budget_left,
            "pausedForSeconds": round(self.paused_for_s, 1),
        }


async def record_poll(
    redis: aioredis.Redis,
    keys: Keys,
    feed: str,
    *,
    error_kind: str | None = None,
    error: str = "",
    at: float | None = None,
) -> None:
    """Record one poll of ``feed``: a success when ``error_kind`` is None."""
    when = time.time() if at is None else at
    key = keys.feed_state(feed)
    pipe = redis.pipeline(transaction=True)
    pipe.hset(key, "last_poll", repr(when))
    pipe.hincrby(key, "polls", 1)
    if error_kind is None:
        pipe.hset(key, mapping={"last_success": repr(when), "failures_in_row": 0})
    else:
        pipe.hset(
            key,
            mapping={
                "last_error": error[:ERROR_CHARS] or error_kind,
                "last_error_kind": error_kind,
                "last_error_at": repr(when),
            },
        )
        pipe.hincrby(key, "failures_in_row", 1)
        pipe.hincrby(key, f"errors:{error_kind}", 1)
    await pipe.execute()


def _float(raw: Any) -> float | None:
    try:
        return None if raw is None else float(raw)
    except ValueError:
        return None


def parse_state(name: str, raw: dict[bytes, bytes]) -> FeedState:
    """A feed's hash as read from Redis (unknown or garbled fields are ignored)."""
    fields = {k.decode(): v.decode() for k, v in raw.items()}
    state = FeedState(name)
    state.last_poll = _float(fields.get("last_poll"))
    state.last_success = _float(fields.get("last_success"))
    state.last_error = fields.get("last_error")
    state.last_error_kind = fields.get("last_error_kind")
    state.last_error_at = _float(fields.get("last_error_at"))
    state.failures_in_row = int(_float(fields.get("failures_in_row")) or 0)
    state.polls = int(_float(fields.get("polls")) or 0)
    state.errors = {
        key.removeprefix("errors:"): int(_float(value) or 0)
        for key, value in fields.items()
        if key.startswith("errors:")
    }
    return state


async def read_feeds(
    redis: aioredis.Redis, keys: Keys, feeds: list[tuple[str, int | None]]
) -> list[FeedState]:
    """Each ``(name, budget per minute)`` feed's record, budget use and pause, in
    one round trip."""
    if not feeds:
        return []
    now_ms = server_ms(await redis.time())
    pipe = redis.pipeline(transaction=False)
    queue_feeds(pipe, keys, [name for name, _ in feeds], now_ms)
    return parse_feeds(await pipe.execute(), feeds)


def server_ms(time_reply: Any) -> int:
    """Redis ``TIME``'s answer (seconds, microseconds) in milliseconds: the budget
    window is counted on the server's clock, as ``RedisBudget`` keeps it."""
    seconds, micros = time_reply
    return int(seconds) * 1000 + int(micros) // 1000


#: Replies ``queue_feeds`` adds to a pipeline per feed.
REPLIES_PER_FEED = 3


def queue_feeds(pipe: aioredis.client.Pipeline, keys: Keys, names: list[str], now_ms: int) -> None:
    """Add each feed's reads to ``pipe`` (``REPLIES_PER_FEED`` replies each, in order)."""
    for name in names:
        pipe.hgetall(keys.feed_state(name))
        pipe.zcount(keys.budget(name), f"({now_ms - BUDGET_WINDOW_MS}", "+inf")
        pipe.pttl(keys.feed_pause(name))


def parse_feeds(replies: list[Any], feeds: list[tuple[str, int | None]]) -> list[FeedState]:
    """The records of ``feeds`` from the replies ``queue_feeds`` asked for."""
    states = []
    for index, (name, limit) in enumerate(feeds):
        at = REPLIES_PER_FEED * index
        raw, used, pause_ms = replies[at : at + REPLIES_PER_FEED]
        state = parse_state(name, raw or {})
        state.budget_used = int(used)
        state.budget_limit = limit
        state.paused_for_s = int(pause_ms) / 1000.0 if int(pause_ms) > 0 else 0.0
        states.append(state)
    return states


async def forget_feed(redis: aioredis.Redis, keys: Keys, feed: str) -> None:
    """Drop a feed's record (the feed was removed)."""
    await redis.delete(keys.feed_state(feed))
