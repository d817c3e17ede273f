"""The WebSocket hub's figures on ``/metrics`` (this worker's registry)."""

from __future__ import annotations

import asyncio
import gc
import time
from collections import deque
from collections.abc import Callable

from edge.metrics import REGISTRY
from livescore.supervise import Loop

#: Commit-to-send lag buckets, seconds.
LAG_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

SENT = REGISTRY.counter(
    "livescore_ws_messages_sent_total", "Change frames written to WebSocket clients"
)
DROPPED_SLOW = REGISTRY.counter(
    "livescore_ws_dropped_slow_total", "Clients closed with 4008 for not reading their frames"
)
CLOSED = REGISTRY.counter(
    "livescore_ws_closed_by_server_total", "Connections the server closed, by close code", ("code",)
)
GAP_FILLS = REGISTRY.counter(
    "livescore_ws_gap_fills_total",
    "Change-log reads that filled a gap (jump: a seq skipped; bus: Redis resubscribed)",
    ("reason",),
)
DUPLICATES = REGISTRY.counter(
    "livescore_ws_duplicates_dropped_total", "Published changes dropped as already delivered"
)
RESETS = REGISTRY.counter(
    "livescore_ws_resets_total", "Matches re-snapshotted because the change log could not fill"
)
ERRORS = REGISTRY.counter("livescore_ws_errors_total", "Error frames sent, by code", ("code",))
LAG = REGISTRY.histogram(
    "livescore_ws_lag_seconds",
    "Commit time of a change (its ts) to the end of its fan-out on this worker",
    buckets=LAG_BUCKETS,
)
JOINS = REGISTRY.counter(
    "livescore_ws_joins_total",
    "Match joins (subscribe, resume) by where they were served from: memory (the feed's "
    "snapshot and ring) or database",
    ("source",),
)
SNAPSHOT_READS = REGISTRY.counter(
    "livescore_ws_snapshot_reads_total",
    "Database reads of a match's snapshot for its feed (a first join on this worker, "
    "shared by every concurrent joiner)",
)
COLLAPSED = REGISTRY.counter(
    "livescore_ws_collapsed_total",
    'Latest-mode subscribers whose queued changes were replaced by one "snapshot" frame',
)

#: Event-loop stall buckets, seconds (the probe's lateness).
STALL_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
STALLS = REGISTRY.histogram(
    "livescore_event_loop_stall_seconds",
    "How late the edge worker's event-loop probe woke up (a stall: the loop ran something "
    "else that long without yielding)",
    buckets=STALL_BUCKETS,
)


#: Seconds between the stall probe's ticks while the worker is busy, and while it
#: is quiet (``StallProbe``).
PROBE_EVERY = 0.02
PROBE_QUIET_EVERY = 0.1
#: A tick interval in which the worker's thread was on the CPU more than this share
#: of the time (or the tick came later than ``every``) counts as busy.
PROBE_BUSY_SHARE = 0.05


class StallProbe:
    """A cheap event-loop stall probe: a timer measuring how late it fired. Each
    lateness goes into ``livescore_event_loop_stall_seconds``; the longest of the
    last ``window`` seconds is the gauge ``livescore_event_loop_stall_max_seconds``
    (read it right after a burst).

    It ticks every ``every`` seconds while the worker is busy, and every
    ``quiet_every`` while it is quiet: on a VM where a timer wake-up costs about
    100 us (bare uvloop with one 10 ms timer: 10 ms of CPU a second), a 20 ms tick
    alone cost a worker with nothing to do half a percent of a core, as much as
    every other periodic duty of the node together, and about half a
    microsecond per frame of a fan-out that sends 10,000 frames a second. Busy
    means: since the last tick the worker's thread was on the CPU for more than
    ``busy_share`` of the time, or the tick was late by more than ``every``; or
    :meth:`wake` was called, which the hub does when a change arrives and the
    door when an upgrade comes, so the stalls of a fan-out or a reconnect storm
    are measured to within ``every`` from their first moment. A stall that starts
    on a quiet worker with neither (a slow request on a kept-alive connection
    after a lull) is seen too, but up to ``quiet_every`` short. Collector pauses
    are timed exactly whatever the mode (``GcTimer``).

    Each tick is a plain timer callback (no task step, no future: a sleeping
    coroutine cost several times more)."""

    def __init__(
        self,
        every: float = PROBE_EVERY,
        window: float = 10.0,
        *,
        quiet_every: float = PROBE_QUIET_EVERY,
        busy_share: float = PROBE_BUSY_SHARE,
    ) -> None:
        self.every = every
        self.quiet_every = quiet_every
        self.busy_share = busy_share
        self.window = window
        #: (second, longest lateness in that second), oldest first
        self._peaks: deque[tuple[int, float]] = deque()
        self._observe = STALLS.labels().observe
        #: ticks so far (tests and the curious: how often it woke)
        self.ticks = 0
        self.quiet = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._beat: Loop | None = None
        self._failed: asyncio.Future[None] | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._ticked_at = 0.0
        self._cpu_at = 0.0
        REGISTRY.gauge_callback(
            "livescore_event_loop_stall_max_seconds",
            f"Longest event-loop stall in the last {window:g} seconds",
            self.recent_max,
        )
        REGISTRY.counter_callback(
            "livescore_event_loop_probe_ticks_total",
            f"Ticks of the stall probe (every {every:g} s while busy, {quiet_every:g} s quiet)",
            lambda: self.ticks,
        )

    def record(self, late: float, now: float) -> None:
        self._observe(late)
        second = int(now)
        peaks = self._peaks
        if peaks and peaks[-1][0] == second:
            if late > peaks[-1][1]:
                peaks[-1] = (second, late)
        else:
            peaks.append((second, late))
        while peaks and peaks[0][0] < second - self.window:
            peaks.popleft()

    def recent_max(self) -> float:
        floor = time.monotonic() - self.window
        return max((late for second, late in self._peaks if second >= floor), default=0.0)

    def wake(self) -> None:
        """Work starts now: tick within ``every`` from here (nothing when already busy)."""
        if self.quiet and self._loop is not None:
            self.quiet = False
            self._arm(time.monotonic(), self.every)

    def _arm(self, now: float, interval: float) -> None:
        assert self._loop is not None
        if self._handle is not None:
            self._handle.cancel()
        self._due = now + interval
        self._handle = self._loop.call_later(interval, self._tick)

    def _tick(self) -> None:
        try:
            now = time.monotonic()
            late = now - self._due
            self.record(late if late > 0.0 else 0.0, now)
            assert self._beat is not None
            self._beat.beat()
            self.ticks += 1
            cpu = time.thread_time()
            busy = late > self.every or cpu - self._cpu_at > self.busy_share * (
                now - self._ticked_at
            )
            self._cpu_at, self._ticked_at = cpu, now
            self.quiet = not busy
            self._arm(now, self.every if busy else self.quiet_every)
        except Exception as exc:
            if self._failed is not None and not self._failed.done():
                self._failed.set_exception(exc)

    async def run(self, beat: Loop) -> None:
        """Tick until cancelled (each tick beats for the supervisor); a tick that
        raises ends this with its exception, so the supervisor restarts the probe."""
        self._loop = asyncio.get_running_loop()
        self._beat = beat
        self._failed = self._loop.create_future()
        self.quiet = False
        self._cpu_at, self._ticked_at = time.thread_time(), time.monotonic()
        self._arm(self._ticked_at, self.every)
        try:
            await self._failed
        finally:
            if self._handle is not None:
                self._handle.cancel()
                self._handle = None
            self._loop = None


GC_PAUSES = REGISTRY.histogram(
    "livescore_gc_pause_seconds",
    "Garbage-collector pauses of the edge worker, by generation",
    ("generation",),
    buckets=STALL_BUCKETS,
)


class GcTimer:
    """Times every garbage collection (``gc.callbacks``): a full collection
    after a burst of connections is the usual long stall; the longest of the
    last ``window`` seconds is ``livescore_gc_pause_max_seconds``."""

    def __init__(self, window: float = 10.0) -> None:
        self.window = window
        self._started = 0.0
        self._peaks: deque[tuple[float, float]] = deque()
        REGISTRY.gauge_callback(
            "livescore_gc_pause_max_seconds",
            f"Longest garbage-collector pause in the last {window:g} seconds",
            self.recent_max,
        )

    def install(self) -> None:
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        now = time.perf_counter()
        if phase == "start":
            self._started = now
            return
        pause = now - self._started
        GC_PAUSES.labels(str(info.get("generation", -1))).observe(pause)
        if pause >= 0.001:
            at = time.monotonic()
            self._peaks.append((at, pause))
            while self._peaks and self._peaks[0][0] < at - self.window:
                self._peaks.popleft()

    def recent_max(self) -> float:
        floor = time.monotonic() - self.window
        return max((pause for at, pause in self._peaks if at >= floor), default=0.0)


class GcFreezer:
    """Keeps full garbage collections short while thousands of connections live.

    CPython's collector walks every tracked object in a full collection, and a
    burst of connections (an edge restart elsewhere, a kickoff) triggers one
    each time the survivors grew by a quarter: at 10,000 connections that is
    a stall of most of a second. So every ``every`` seconds what has survived
    is frozen (``gc.freeze()``: moved out of the collector's sight, O(1));
    collections then walk only what came since. Objects of connections that
    closed since may hold reference cycles only a collection frees, so once as
    many connections closed as are open (the population turned over), and at
    least ``RECLAIM_AFTER``, the freeze is undone and ONE full collection runs
    (timed by ``GcTimer``). Such a collection walks the whole heap, startup's
    objects included (about 0.1 s under load even with no client left), while a
    closed lean connection leaves about one object in a cycle (3,000 closed:
    2,943 found, ``livescore_gc_reclaimed_objects_total``; the rest is freed by
    reference counting, frozen or not), hence the high floor."""

    #: Closed connections that make a full collection worth its pause, at least.
    RECLAIM_AFTER = 20_000

    def __init__(self, open_now: Callable[[], int], closed_total: Callable[[], int]) -> None:
        self.open_now = open_now
        self.closed_total = closed_total
        self.closed_at_reclaim = 0
        self.every = 0.5
        self.reclaims = 0
        self.reclaimed = 0
        REGISTRY.counter_callback(
            "livescore_gc_reclaims_total",
            "Full collections run after the connections turned over (frozen objects released)",
            lambda: self.reclaims,
        )
        REGISTRY.counter_callback(
            "livescore_gc_reclaimed_objects_total",
            "Unreachable objects those full collections found (reference cycles of closed "
            "connections: 0 would mean the reclaims are not needed)",
            lambda: self.reclaimed,
        )

    def tick(self) -> None:
        closed = self.closed_total()
        if closed - self.closed_at_reclaim > max(self.RECLAIM_AFTER, self.open_now()):
            self.closed_at_reclaim = closed
            self.reclaims += 1
            gc.unfreeze()
            self.reclaimed += gc.collect()
        gc.freeze()

    async def run(self, beat: Loop) -> None:
        while True:
            await asyncio.sleep(self.every)
            beat.beat()
            self.tick()
