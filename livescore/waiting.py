"""Waiting with a deadline without losing a cancellation.

On Python 3.11, ``asyncio.wait_for`` swallows a cancellation that arrives as
the awaited thing completes (CPython gh-86296, fixed in 3.12): the cancelled
task returns normally and runs on. A relay killed while its wake-up event
was being set kept publishing, and its killer waited forever.
``asyncio.timeout`` keeps the cancellation; every deadline wait in the
project goes through it (``tests/foundation/test_waiting.py``)."""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait until ``event`` is set or ``seconds`` pass; True if it was set.
    A cancellation of the caller is never turned into a normal return."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True
