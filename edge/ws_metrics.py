"""The WebSocket hub's figures on ``/metrics`` (this worker's registry)."""

from __future__ import annotations

from edge.metrics import REGISTRY

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
