"""The GC freezer (``edge.ws_metrics.GcFreezer``): survivors are frozen at each
tick, and the one full collection that releases frozen garbage runs only once
the connections turned over (as many closed as are open) and at least
``RECLAIM_AFTER`` closed since the last one."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from edge.ws_metrics import GcFreezer


@pytest.fixture
def counts() -> Iterator[dict[str, int]]:
    enabled = gc.isenabled()
    gc.disable()  # no automatic collection frees the test's cycle before the freeze
    yield {"open": 0, "closed": 0}
    gc.unfreeze()  # leave the test process's collector as it was
    if enabled:
        gc.enable()


class Cycle:
    def __init__(self) -> None:
        self.me = self


def freezer(counts: dict[str, int]) -> GcFreezer:
    return GcFreezer(lambda: counts["open"], lambda: counts["closed"])


def test_survivors_are_frozen_at_each_tick_without_a_full_collection(
    counts: dict[str, int],
) -> None:
    freezer_ = freezer(counts)
    counts["closed"] = GcFreezer.RECLAIM_AFTER  # not more: no reclaim yet
    freezer_.tick()
    assert gc.get_freeze_count() > 0
    assert freezer_.reclaims == 0


def test_frozen_cycles_are_released_once_enough_connections_closed(
    counts: dict[str, int],
) -> None:
    freezer_ = freezer(counts)
    Cycle()  # garbage only a collection frees
    freezer_.tick()  # frozen with the survivors
    counts["open"] = 5 * GcFreezer.RECLAIM_AFTER
    counts["closed"] = 2 * GcFreezer.RECLAIM_AFTER  # fewer than are open: not turned over
    freezer_.tick()
    assert freezer_.reclaims == 0
    counts["open"] = 10
    freezer_.tick()
    assert freezer_.reclaims == 1
    assert freezer_.reclaimed >= 1  # the cycle, among whatever else was garbage
    freezer_.tick()
    assert freezer_.reclaims == 1  # counted from the last reclaim
