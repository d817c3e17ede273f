"""The WebSocket hub's figures on ``/metrics`` (this worker's registry)."""

from __future__ import annotations

import asyncio
import time
from collections import deque

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


class StallProbe:
    """A cheap event-loop stall probe: sleep ``every`` seconds, measure how late the
    wake-up came. Each lateness goes into ``livescore_event_loop_stall_seconds``; the
    longest of the last ``window`` seconds is the gauge
    ``livescore_event_loop_stall_max_seconds`` (read it right after a burst)."""

    def __init__(self, every: float = 0.01, window: float = 10.0) -> None:
        self.every = every
        self.window = window
        #: (second, longest lateness in that second), oldest first
        self._peaks: deque[tuple[int, float]] = deque()
        REGISTRY.gauge_callback(
            "livescore_event_loop_stall_max_seconds",
            f"Longest event-loop stall in the last {window:g} seconds",
            self.recent_max,
        )

    def record(self, late: float, now: float) -> None:
        STALLS.labels().observe(late)
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

    async def run(self, beat: Loop) -> None:
        every = self.every
        while True:
            start = time.monotonic()
            await asyncio.sleep(every)
            now = time.monotonic()
            self.record(max(now - start - every, 0.0), now)
            beat.beat()
