"""A small Prometheus registry: counters, gauges and histograms, rendered in
the text exposition format (version 0.0.4).

Hand-rolled rather than ``prometheus_client``: the edge needs three metric
kinds, label children cached by tuple, and one render function; that is
a few hundred lines, adds no dependency, and keeps the per-request cost at a
dict lookup and an addition.

Rendering goes through a snapshot: ``Registry.snapshot()`` is every metric
as plain JSON-able data, and ``render_snapshots`` merges any number of them
(the same series added up) into the text format; ``Registry.render()`` is
``render_snapshots([registry.snapshot()])``.

Usage (one process-wide ``REGISTRY``; registering the same name twice
returns the existing metric, so modules may declare theirs at import)::

    from edge.metrics import REGISTRY

    sockets = REGISTRY.gauge("livescore_ws_connections", "Open WebSocket connections")
    sockets.labels().inc()
    sent = REGISTRY.counter("livescore_ws_frames_total", "Frames sent", ("type",))
    sent.labels("score:update").inc()
    lag = REGISTRY.histogram("livescore_ws_send_seconds", "Send time", buckets=(0.001, 0.01))
    lag.labels().observe(0.004)
    REGISTRY.gauge_callback("livescore_cache_entries", "Cached matches", lambda: len(cache))
    REGISTRY.counter_callback("livescore_x_total", "Kept by an object", lambda: obj.count)

Each Sanic worker process has its own registry; with ``--workers N`` the
workers share their snapshots (``edge.metrics_share``), so a scrape shows the
node's totals, every series summed over its live workers (README, "Metrics").
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, NotRequired, TypedDict, TypeVar

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Request latency buckets, seconds (sub-millisecond up: the hot reads are served from memory).
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip


class SampleSnapshot(TypedDict):
    """One child (one set of label values) of a metric."""

    labels: list[str]
    #: a counter's or gauge's value; a histogram's sum
    value: float
    #: a histogram's count per bucket, not cumulative (the last is +Inf); [] otherwise
    counts: list[int]


class MetricSnapshot(TypedDict):
    kind: str  # "counter", "gauge" or "histogram"
    help: str
    labelnames: list[str]
    #: a histogram's upper bounds without +Inf; [] otherwise
    buckets: list[float]
    samples: list[SampleSnapshot]
    #: how a node's workers' values of one series combine: "sum" (the default,
    #: absent) or "max" (every worker reads the same cluster-wide value)
    merge: NotRequired[str]


#: Every metric of a registry by name, in registration order (JSON-able as is).
Snapshot = dict[str, MetricSnapshot]

KINDS = frozenset({"counter", "gauge", "histogram"})
MERGES = frozenset({"sum", "max"})


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


class CounterChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up; use a gauge")
        self.value += amount


class GaugeChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def set(self, value: float) -> None:
        self.value = value

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount


class HistogramChild:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value


C = TypeVar("C", CounterChild, GaugeChild, HistogramChild)


class Metric(ABC, Generic[C]):
    kind = "untyped"

    def __init__(self, name: str, help: str, labelnames: Sequence[str]) -> None:
        self.name = name
        self.help = help
        self.labelnames = tuple(labelnames)
        self._children: dict[tuple[str, ...], C] = {}

    @abstractmethod
    def _new_child(self) -> C:
        """A fresh child for one set of label values."""

    def labels(self, *values: str) -> C:
        """The child for these label values (in ``labelnames`` order), created on first use."""
        child = self._children.get(values)
        if child is None:
            if len(values) != len(self.labelnames):
                raise ValueError(f"{self.name} takes labels {self.labelnames}, got {values}")
            child = self._children[values] = self._new_child()
        return child

    @abstractmethod
    def _sample(self, values: tuple[str, ...], child: C) -> SampleSnapshot:
        """One child's values as plain data."""

    def _snapshot_samples(self) -> list[SampleSnapshot]:
        return [self._sample(values, child) for values, child in list(self._children.items())]

    def snapshot(self) -> MetricSnapshot:
        return {
            "kind": self.kind,
            "help": self.help,
            "labelnames": list(self.labelnames),
            "buckets": [],
            "samples": self._snapshot_samples(),
        }


class Counter(Metric[CounterChild]):
    kind = "counter"

    def _new_child(self) -> CounterChild:
        return CounterChild()

    def _sample(self, values: tuple[str, ...], child: CounterChild) -> SampleSnapshot:
        return {"labels": list(values), "value": child.value, "counts": []}


class Gauge(Metric[GaugeChild]):
    kind = "gauge"

    def _new_child(self) -> GaugeChild:
        return GaugeChild()

    def _sample(self, values: tuple[str, ...], child: GaugeChild) -> SampleSnapshot:
        return {"labels": list(values), "value": child.value, "counts": []}


class CallbackGauge(Gauge):
    """A value read from a function at scrape time (queue lengths, cache sizes; or a
    counter some object keeps itself, with ``kind="counter"``)."""

    def __init__(
        self,
        name: str,
        help: str,
        read: Callable[[], float],
        kind: str = "gauge",
        merge: str = "sum",
    ) -> None:
        super().__init__(name, help, ())
        self.read = read
        self.kind = kind
        self.merge = merge

    def _new_child(self) -> GaugeChild:
        raise TypeError(f"{self.name} is read from a function; it has no labelled children")

    def _snapshot_samples(self) -> list[SampleSnapshot]:
        return [{"labels": [], "value": float(self.read()), "counts": []}]

    def snapshot(self) -> MetricSnapshot:
        snap = super().snapshot()
        if self.merge != "sum":
            snap["merge"] = self.merge
        return snap


class ReadingGauge(CallbackGauge):
    """Labelled values read from a function at scrape time: ``read()`` returns
    ``{label values: value}`` (a cluster-wide reading per feed, say)."""

    def __init__(
        self,
        name: str,
        help: str,
        labelnames: Sequence[str],
        read: Callable[[], dict[tuple[str, ...], float]],
        kind: str = "gauge",
        merge: str = "sum",
    ) -> None:
        super().__init__(name, help, lambda: 0.0, kind, merge)
        self.labelnames = tuple(labelnames)
        self.read_all = read

    def _snapshot_samples(self) -> list[SampleSnapshot]:
        return [
            {"labels": list(values), "value": float(value), "counts": []}
            for values, value in self.read_all().items()
        ]


class Histogram(Metric[HistogramChild]):
    kind = "histogram"

    def __init__(
        self, name: str, help: str, labelnames: Sequence[str], buckets: Sequence[float]
    ) -> None:
        super().__init__(name, help, labelnames)
        self.buckets = tuple(sorted(float(b) for b in buckets if not math.isinf(b)))

    def _new_child(self) -> HistogramChild:
        return HistogramChild(self.buckets)

    def _sample(self, values: tuple[str, ...], child: HistogramChild) -> SampleSnapshot:
        return {"labels": list(values), "value": child.sum, "counts": list(child.counts)}

    def snapshot(self) -> MetricSnapshot:
        return {**super().snapshot(), "buckets": list(self.buckets)}


M = TypeVar("M", bound=Metric[CounterChild] | Metric[GaugeChild] | Metric[HistogramChild])
CG = TypeVar("CG", bound=CallbackGauge)


class Registry:
    def __init__(self) -> None:
        self._metrics: dict[
            str, Metric[CounterChild] | Metric[GaugeChild] | Metric[HistogramChild]
        ] = {}

    def _register(self, metric: M) -> M:
        existing = self._metrics.get(metric.name)
        if existing is not None:
            if type(existing) is not type(metric) or existing.labelnames != metric.labelnames:
                raise ValueError(f"metric {metric.name} is already registered differently")
            return existing
        self._metrics[metric.name] = metric
        return metric

    def counter(self, name: str, help: str, labelnames: Sequence[str] = ()) -> Counter:
        return self._register(Counter(name, help, labelnames))

    def gauge(self, name: str, help: str, labelnames: Sequence[str] = ()) -> Gauge:
        return self._register(Gauge(name, help, labelnames))

    def gauge_callback(
        self,
        name: str,
        help: str,
        read: Callable[[], float],
        *,
        kind: str = "gauge",
        merge: str = "sum",
    ) -> CallbackGauge:
        """Replaces an earlier callback of the same name (a restarted worker's new cache).

        ``merge="max"``: every worker of a node reads the same cluster-wide value
        (the relay's backlog), so the node shows it once rather than summed."""
        return self._callback(CallbackGauge(name, help, read, kind, merge))

    def readings(
        self,
        name: str,
        help: str,
        labelnames: Sequence[str],
        read: Callable[[], dict[tuple[str, ...], float]],
        *,
        kind: str = "gauge",
        merge: str = "max",
    ) -> ReadingGauge:
        """Labelled values read at scrape time (see ``ReadingGauge``); replaces an
        earlier one of the same name."""
        return self._callback(ReadingGauge(name, help, labelnames, read, kind, merge))

    def _callback(self, metric: CG) -> CG:
        if metric.merge not in MERGES:
            raise ValueError(f"{metric.name}: merge must be one of {sorted(MERGES)}")
        existing = self._metrics.get(metric.name)
        if existing is not None and not isinstance(existing, CallbackGauge):
            raise ValueError(f"metric {metric.name} is already registered differently")
        self._metrics[metric.name] = metric
        return metric

    def counter_callback(self, name: str, help: str, read: Callable[[], float]) -> CallbackGauge:
        """A counter kept elsewhere (an attribute that only grows), read at scrape time."""
        return self.gauge_callback(name, help, read, kind="counter")

    def histogram(
        self,
        name: str,
        help: str,
        labelnames: Sequence[str] = (),
        buckets: Sequence[float] = LATENCY_BUCKETS,
    ) -> Histogram:
        return self._register(Histogram(name, help, labelnames, buckets))

    def snapshot(self) -> Snapshot:
        """Every metric as plain data (callbacks read now), in registration order."""
        return {name: m.snapshot() for name, m in list(self._metrics.items())}

    def value(self, name: str) -> float | None:
        """One metric's current value, its series added up (None: no such metric)."""
        metric = self._metrics.get(name)
        if metric is None:
            return None
        return sum(sample["value"] for sample in metric.snapshot()["samples"])

    def render(self) -> str:
        """Every metric in the Prometheus text format."""
        return render_snapshots([self.snapshot()])


def render_snapshots(snapshots: Iterable[Snapshot]) -> str:
    """Several registries' snapshots as one Prometheus text: metrics by name (first
    seen first), each label set's values added up (a histogram's bucket counts and
    sum too; a ``merge="max"`` metric's values take the largest). A metric whose
    kind, labels or buckets differ from the first seen of its name cannot be added
    to it and is left out."""
    merged: dict[str, tuple[MetricSnapshot, dict[tuple[str, ...], SampleSnapshot]]] = {}
    for snapshot in snapshots:
        for name, metric in snapshot.items():
            entry = merged.get(name)
            if entry is None:
                entry = merged[name] = (metric, {})
            elif not _same_shape(entry[0], metric):
                continue
            children = entry[1]
            for sample in metric["samples"]:
                key = tuple(sample["labels"])
                seen = children.get(key)
                if seen is None:
                    children[key] = {
                        "labels": sample["labels"],
                        "value": sample["value"],
                        "counts": list(sample["counts"]),
                    }
                elif metric.get("merge") == "max":
                    seen["value"] = max(seen["value"], sample["value"])
                else:
                    seen["value"] += sample["value"]
                    seen["counts"] = [
                        a + b for a, b in zip(seen["counts"], sample["counts"], strict=True)
                    ]
    return "".join(
        _render(name, metric, children.values()) for name, (metric, children) in merged.items()
    )


def _same_shape(a: MetricSnapshot, b: MetricSnapshot) -> bool:
    return (a["kind"], a["labelnames"], a["buckets"]) == (b["kind"], b["labelnames"], b["buckets"])


def _render(name: str, metric: MetricSnapshot, samples: Iterable[SampleSnapshot]) -> str:
    names = metric["labelnames"]
    lines = [f"# HELP {name} {_escape(metric['help'])}\n# TYPE {name} {metric['kind']}\n"]
    histogram = metric["kind"] == "histogram"
    bounds = [*metric["buckets"], math.inf]
    for sample in samples:
        values = sample["labels"]
        if not histogram:
            lines.append(f"{name}{_labels(names, values)} {_number(sample['value'])}\n")
            continue
        cumulative = 0
        for bound, count in zip(bounds, sample["counts"], strict=True):
            cumulative += count
            le = _labels(names, values, f'le="{_number(bound)}"')
            lines.append(f"{name}_bucket{le} {cumulative}\n")
        lines.append(f"{name}_sum{_labels(names, values)} {_number(sample['value'])}\n")
        lines.append(f"{name}_count{_labels(names, values)} {cumulative}\n")
    return "".join(lines)


def parse_snapshot(data: Any) -> Snapshot:
    """A decoded snapshot from elsewhere (another worker's JSON), checked and
    retyped; ValueError if it is not one."""
    if not isinstance(data, dict):
        raise ValueError("a snapshot is an object")
    snapshot: Snapshot = {}
    for name, metric in data.items():
        kind = metric.get("kind") if isinstance(metric, dict) else None
        if not isinstance(metric, dict) or not isinstance(kind, str) or kind not in KINDS:
            raise ValueError(f"{name}: not a metric")
        help, labelnames = metric.get("help"), _strings(metric.get("labelnames"))
        buckets, samples = _numbers(metric.get("buckets")), metric.get("samples")
        histogram = kind == "histogram"
        if not isinstance(help, str) or not isinstance(samples, list):
            raise ValueError(f"{name}: no help or samples")
        if buckets and not histogram:
            raise ValueError(f"{name}: buckets on a {kind}")
        parsed: list[SampleSnapshot] = []
        for sample in samples:
            if not isinstance(sample, dict):
                raise ValueError(f"{name}: a sample is not an object")
            labels, value = _strings(sample.get("labels")), _numbers([sample.get("value")])[0]
            counts = sample.get("counts")
            if len(labels) != len(labelnames):
                raise ValueError(f"{name}: {labels} do not match {labelnames}")
            if not isinstance(counts, list) or not all(type(c) is int for c in counts):
                raise ValueError(f"{name}: bucket counts are not integers")
            if len(counts) != (len(buckets) + 1 if histogram else 0):
                raise ValueError(f"{name}: {len(counts)} bucket counts for {buckets}")
            parsed.append({"labels": labels, "value": value, "counts": counts})
        snapshot[str(name)] = {
            "kind": kind,
            "help": help,
            "labelnames": labelnames,
            "buckets": buckets,
            "samples": parsed,
        }
        merge = metric.get("merge")
        if merge is not None:
            if merge not in MERGES:
                raise ValueError(f"{name}: merge {merge!r} is not one of {sorted(MERGES)}")
            snapshot[str(name)]["merge"] = merge
    return snapshot


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"not a list of strings: {value!r}")
    return value


def _numbers(value: Any) -> list[float]:
    if not isinstance(value, list) or not all(type(v) in (int, float) for v in value):
        raise ValueError(f"not a list of numbers: {value!r}")
    return [float(v) for v in value]


#: The process-wide registry the edge (REST and WebSocket) records into.
REGISTRY = Registry()
