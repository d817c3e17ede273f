"""Supervised long-running loops, each with a heartbeat.

Every loop a process runs for its whole life (the relay, the change bus, the
WebSocket keepalive, metrics sharing, ...) is started through
``Loops.supervise``. A loop that raises unexpectedly is logged at once with
its traceback and started again after a backoff (0.5 s doubling to 30 s,
reset once it has run for a minute); a loop that returns normally is done.
Each loop beats (``Loop.beat()``) at least once per ``interval``; ``stuck()``
names those that missed ``grace`` intervals, so ``/health`` can say which
loop of a process is stuck within seconds, not only which one died.

Usage::

    loops = Loops()
    async def relay(loop: Loop) -> None:
        while True:
            ...
            loop.beat()
    loops.supervise("relay", relay, interval=1.0)
    ...
    loops.stuck()        # -> [] or [LoopReport(name="relay", ...)]
    await loops.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from livescore.logs import kv

log = logging.getLogger("livescore.supervise")

#: First and largest wait before a crashed loop is started again, in seconds.
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
#: A loop that ran this long before crashing starts again after BACKOFF_FIRST.
HEALTHY_RUN = 60.0


@dataclass(frozen=True, slots=True)
class LoopReport:
    """What ``/health`` says of one loop."""

    name: str
    ok: bool
    #: seconds since the loop's last heartbeat
    age: float
    interval: float
    restarts: int
    last_error: str | None

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "lastBeatSecondsAgo": round(self.age, 2),
            "interval": self.interval,
            "restarts": self.restarts,
            "lastError": self.last_error,
        }


class Loop:
    """One supervised loop's heartbeat and record."""

    __slots__ = ("grace", "interval", "last_beat", "last_error", "name", "restarts", "task")

    def __init__(self, name: str, interval: float, grace: float) -> None:
        self.name = name
        self.interval = interval
        self.grace = grace
        self.last_beat = time.monotonic()
        self.restarts = 0
        self.last_error: str | None = None
        self.task: asyncio.Task[None] | None = None

    def beat(self) -> None:
        """Say the loop is alive; call at least once per ``interval``."""
        self.last_beat = time.monotonic()

    def report(self, now: float | None = None) -> LoopReport:
        age = (time.monotonic() if now is None else now) - self.last_beat
        ok = age <= self.interval * self.grace and self.task is not None and not self.task.done()
        return LoopReport(self.name, ok, age, self.interval, self.restarts, self.last_error)


LoopBody = Callable[[Loop], Awaitable[None]]


class Loops:
    """The supervised loops of one process."""

    def __init__(self) -> None:
        self.loops: dict[str, Loop] = {}

    def supervise(self, name: str, body: LoopBody, *, interval: float, grace: float = 3.0) -> Loop:
        """Run ``body(loop)`` as a task, restarting it whenever it raises.

        ``interval``: how often the body promises to ``beat()``; the loop is
        reported stuck after ``grace`` intervals without one (at least 2 s)."""
        if name in self.loops and self.loops[name].task is not None:
            raise ValueError(f"a loop named {name!r} is already supervised; stop it first")
        loop = Loop(name, interval, max(grace, 2.0 / interval))
        self.loops[name] = loop
        loop.task = asyncio.get_running_loop().create_task(self._run(loop, body), name=name)
        return loop

    async def _run(self, loop: Loop, body: LoopBody) -> None:
        backoff = BACKOFF_FIRST
        while True:
            started = time.monotonic()
            loop.beat()
            try:
                await body(loop)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                loop.restarts += 1
                loop.last_error = f"{type(exc).__name__}: {exc}"[:300]
                if time.monotonic() - started >= HEALTHY_RUN:
                    backoff = BACKOFF_FIRST
                log.exception(
                    kv("loop.crashed", loop=loop.name, restarts=loop.restarts, retry_s=backoff)
                )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)

    def reports(self) -> list[LoopReport]:
        now = time.monotonic()
        return [loop.report(now) for loop in self.loops.values()]

    def stuck(self) -> list[LoopReport]:
        return [report for report in self.reports() if not report.ok]

    async def stop(self, name: str | None = None) -> None:
        """Cancel one loop (or all) and wait for it to end."""
        names = [name] if name is not None else list(self.loops)
        for each in names:
            task = self.loops[each].task
            if task is not None:
                task.cancel()
        for each in names:
            task = self.loops[each].task
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            del self.loops[each]
