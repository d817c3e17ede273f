"""Waiting in tests: the one way to wait for a condition, and fake time.

The rule: a test never sleeps a fixed time before an assertion. It waits
for the condition it asserts (``eventually``; ``eventually_blocking`` in a
sync test), bounds an await it expects to finish (``bounded``), or drives
time itself (``FakeClock``, ``FakeSleep``) where the code under test takes a
clock. A fixed sleep stays only where no event exists to wait for, and
says so in a comment next to it (typically: after the last thing that
could happen, anything extra would arrive within that time; absence cannot
be awaited).

``eventually`` polls ``predicate`` until it returns something truthy, and
returns that: the predicate may be sync or async, and may ``assert`` (an
AssertionError counts as "not yet"; the last one is chained to the timeout
so the failure shows what was still wrong). It gives up only after a check
that began past the deadline failed, so ``eventually(p, within=t)`` is never
stricter than sleeping ``t`` and then asserting ``p``.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

T = TypeVar("T")

#: Seconds between polls: short enough to see a condition promptly, long enough
#: not to starve what it waits for.
POLL_ASYNC = 0.02
POLL_BLOCKING = 0.1


def _timed_out(within: float, what: str, predicate: object, last: BaseException | None) -> NoReturn:
    name = what or getattr(predicate, "__qualname__", repr(predicate))
    detail = f": {last}" if last is not None and str(last) else ""
    raise AssertionError(f"timed out after {within}s waiting for {name}{detail}") from last


async def eventually(
    predicate: Callable[[], T | Awaitable[T]],
    within: float = 15.0,
    what: str = "",
    *,
    every: float = POLL_ASYNC,
) -> T:
    """The first truthy value of ``predicate()`` (sync or async), polled every
    ``every`` seconds; an AssertionError after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        last: AssertionError | None = None
        started = time.monotonic()
        try:
            result = predicate()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result  # type: ignore[return-value]
        except AssertionError as exc:
            last = exc
        if started > deadline:
            _timed_out(within, what, predicate, last)
        await asyncio.sleep(every)


def eventually_blocking(
    predicate: Callable[[], T],
    within: float = 15.0,
    what: str = "",
    *,
    every: float = POLL_BLOCKING,
) -> T:
    """``eventually`` for a sync test: blocks the thread between polls."""
    deadline = time.monotonic() + within
    while True:
        last: AssertionError | None = None
        started = time.monotonic()
        try:
            result = predicate()
            if result:
                return result
        except AssertionError as exc:
            last = exc
        if started > deadline:
            _timed_out(within, what, predicate, last)
        time.sleep(every)


def awaiting(task: asyncio.Task[Any]) -> str:
    """Where a task waits: its coroutine, then what that awaits, down the chain."""
    where, coro, depth = [], task.get_coro(), 0
    while coro is not None and depth < 20:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None)
        if frame is not None:
            where.append(f"{frame.f_code.co_qualname}:{frame.f_lineno}")
        else:
            where.append(repr(coro)[:80])
        coro = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None)
        depth += 1
    return " -> ".join(where)


async def bounded(awaitable: Awaitable[T], seconds: float, what: str) -> T:
    """Await with a deadline; on a hang, fail with every task's stack (a hang
    otherwise only shows as pytest-timeout's idle event loop)."""
    try:
        async with asyncio.timeout(seconds):
            return await awaitable
    except TimeoutError:
        stacks = [f"{task.get_name()}: {awaiting(task)}" for task in asyncio.all_tasks()]
        raise AssertionError(
            f"waited {seconds}s for {what}; tasks:\n" + "\n".join(stacks)
        ) from None


class FakeClock:
    """A monotonic clock (``Callable[[], float]``) that moves only when told."""

    def __init__(self, start: float = 1000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class FakeSleep:
    """An ``asyncio.sleep`` stand-in that records each wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
