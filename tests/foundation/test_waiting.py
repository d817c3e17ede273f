"""Deadline waits keep cancellations (``livescore.waiting``).

Python 3.11's ``asyncio.wait_for`` returns normally when a cancellation lands
as the awaited event is set; a relay "killed" that way ran on. These tests
pin the rule for our helper and keep ``asyncio.wait_for`` out of the code.
"""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import pytest

from livescore.waiting import wait_event

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ["livescore", "providers", "pipeline", "edge", "store", "cli.py", "commands"]


async def test_wait_event_says_whether_the_event_was_set() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    event.set()
    assert await wait_event(event, 10) is True


async def test_a_cancellation_landing_as_the_event_is_set_is_never_lost() -> None:
    for _ in range(50):
        event = asyncio.Event()
        waiter = asyncio.create_task(wait_event(event, 10))
        await asyncio.sleep(0)  # the waiter is now waiting
        event.set()
        waiter.cancel()  # in the same step: asyncio.wait_for would return True here
        with pytest.raises(asyncio.CancelledError):
            await waiter


def test_no_product_code_calls_asyncio_wait_for() -> None:
    offenders = []
    for entry in PRODUCT:
        path = ROOT / entry
        files = [path] if path.is_file() else sorted(path.rglob("*.py"))
        for file in files:
            for node in ast.walk(ast.parse(file.read_text(), str(file))):
                if isinstance(node, ast.Attribute) and node.attr == "wait_for":
                    offenders.append(f"{file.relative_to(ROOT)}:{node.lineno}")
    assert offenders == [], "use livescore.waiting.wait_event or asyncio.timeout instead"
