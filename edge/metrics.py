"""A small Prometheus registry: counters, gauges and histograms, rendered in
the text exposition format (version 0.0.4).

Hand-rolled rather than ``prometheus_client``: the edge needs three metric
kinds, label children cached by tuple, and one render function; that is
about 150 lines, adds no dependency, and keeps the per-request cost at a
dict lookup and an addition.

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

Each Sanic worker process has its own registry: with ``--workers N`` a
scrape reads the worker that answered it (see README, "Metrics").
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from typing import Generic, TypeVar

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Request latency buckets, seconds (sub-millisecond up: the hot reads are served from memory).
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip


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
    def _samples(self) -> Iterable[str]:
        """The exposition lines of every child."""

    def render(self) -> str:
        head = f"# HELP {self.name} {_escape(self.help)}\n# TYPE {self.name} {self.kind}\n"
        return head + "".join(self._samples())


class Counter(Metric[CounterChild]):
    kind = "counter"

    def _new_child(self) -> CounterChild:
        return CounterChild()

    def _samples(self) -> Iterable[str]:
        for values, child in list(self._children.items()):
            yield f"{self.name}{_labels(self.labelnames, values)} {_number(child.value)}\n"


class Gauge(Metric[GaugeChild]):
    kind = "gauge"

    def _new_child(self) -> GaugeChild:
        return GaugeChild()

    def _samples(self) -> Iterable[str]:
        for values, child in list(self._children.items()):
            yield f"{self.name}{_labels(self.labelnames, values)} {_number(child.value)}\n"


class CallbackGauge(Metric[GaugeChild]):
    """A value read from a function at scrape time (queue lengths, cache sizes; or a
    counter some object keeps itself, with ``kind="counter"``)."""

    def __init__(
        self, name: str, help: str, read: Callable[[], float], kind: str = "gauge"
    ) -> None:
        super().__init__(name, help, ())
        self.read = read
        self.kind = kind

    def _new_child(self) -> GaugeChild:
        raise TypeError(f"{self.name} is read from a function; it has no labelled children")

    def _samples(self) -> Iterable[str]:
        yield f"{self.name} {_number(float(self.read()))}\n"


class Histogram(Metric[HistogramChild]):
    kind = "histogram"

    def __init__(
        self, name: str, help: str, labelnames: Sequence[str], buckets: Sequence[float]
    ) -> None:
        super().__init__(name, help, labelnames)
        self.buckets = tuple(sorted(float(b) for b in buckets if not math.isinf(b)))

    def _new_child(self) -> HistogramChild:
        return HistogramChild(self.buckets)

    def _samples(self) -> Iterable[str]:
        names = self.labelnames
        for values, child in list(self._children.items()):
            cumulative = 0
            for bound, count in zip((*self.buckets, math.inf), child.counts, strict=True):
                cumulative += count
                le = _labels(names, values, f'le="{_number(bound)}"')
                yield f"{self.name}_bucket{le} {cumulative}\n"
            yield f"{self.name}_sum{_labels(names, values)} {_number(child.sum)}\n"
            yield f"{self.name}_count{_labels(names, values)} {cumulative}\n"


M = TypeVar("M", bound=Metric[CounterChild] | Metric[GaugeChild] | Metric[HistogramChild])


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
        self, name: str, help: str, read: Callable[[], float], *, kind: str = "gauge"
    ) -> CallbackGauge:
        """Replaces an earlier callback of the same name (a restarted worker's new cache)."""
        metric = CallbackGauge(name, help, read, kind)
        existing = self._metrics.get(name)
        if existing is not None and not isinstance(existing, CallbackGauge):
            raise ValueError(f"metric {name} is already registered differently")
        self._metrics[name] = metric
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

    def render(self) -> str:
        """Every metric in the Prometheus text format."""
        return "".join(m.render() for m in list(self._metrics.values()))


#: The process-wide registry the edge (REST and WebSocket) records into.
REGISTRY = Registry()
