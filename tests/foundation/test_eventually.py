"""The tests' one way to wait (``tests.waiting``)."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.waiting import FakeClock, FakeSleep, bounded, eventually, eventually_blocking


async def test_eventually_returns_the_first_truthy_value_of_a_sync_or_async_predicate() -> None:
    calls = []

    def sync() -> list[int] | None:
        calls.append(1)
        return calls if len(calls) == 3 else None

    assert await eventually(sync, 1, every=0) == [1, 1, 1]

    async def later() -> str:
        return "done"

    assert await eventually(later, 1) == "done"


async def test_eventually_fails_with_what_it_waited_for_and_the_last_assertion() -> None:
    def still_wrong() -> bool:
        assert 1 == 2, "one is not two"
        return True

    with pytest.raises(AssertionError, match="waiting for the impossible: one is not two"):
        await eventually(still_wrong, 0.05, "the impossible", every=0.01)


async def test_eventually_checks_once_more_after_the_deadline() -> None:
    started = time.monotonic()
    checks: list[float] = []

    def after_the_deadline() -> bool:
        checks.append(time.monotonic() - started)
        return checks[-1] > 0.05

    await eventually(after_the_deadline, 0.05, every=0.02)  # never stricter than sleep + assert
    assert checks[-1] > 0.05


def test_eventually_blocking_and_other_errors() -> None:
    assert eventually_blocking(lambda: 7, 1) == 7
    with pytest.raises(ZeroDivisionError):  # not an assertion: fails at once
        eventually_blocking(lambda: 1 // 0, 10)


async def test_bounded_names_what_hung() -> None:
    with pytest.raises(AssertionError, match=r"waited 0\.01s for a hang; tasks:"):
        await bounded(asyncio.Event().wait(), 0.01, "a hang")


async def test_fake_clock_and_sleep() -> None:
    clock, sleep = FakeClock(), FakeSleep()
    start = clock()
    clock.advance(2.5)
    assert clock() - start == 2.5
    await sleep(3)
    assert sleep.waits == [3]
