"""The hand-rolled Prometheus registry renders valid text exposition format."""

from __future__ import annotations

import pytest

from edge.metrics import Registry


def test_counter_gauge_and_histogram_render() -> None:
    registry = Registry()
    requests = registry.counter("t_requests_total", "Requests", ("route", "status"))
    requests.labels("/a", "200").inc()
    requests.labels("/a", "200").inc(2)
    requests.labels('/b"\\\n', "500").inc()
    sockets = registry.gauge("t_sockets", "Open sockets")
    sockets.labels().inc(3)
    sockets.labels().dec()
    latency = registry.histogram("t_seconds", "Latency", ("route",), buckets=(0.1, 1.0))
    for value in (0.05, 0.5, 5.0):
        latency.labels("/a").observe(value)
    registry.gauge_callback("t_cached", "Cached", lambda: 7)
    registry.counter_callback("t_failed_total", "Failed", lambda: 2)
    text = registry.render()
    assert text.splitlines() == [
        "# HELP t_requests_total Requests",
        "# TYPE t_requests_total counter",
        't_requests_total{route="/a",status="200"} 3',
        't_requests_total{route="/b\\"\\\\\\n",status="500"} 1',
        "# HELP t_sockets Open sockets",
        "# TYPE t_sockets gauge",
        "t_sockets 2",
        "# HELP t_seconds Latency",
        "# TYPE t_seconds histogram",
        't_seconds_bucket{route="/a",le="0.1"} 1',
        't_seconds_bucket{route="/a",le="1"} 2',
        't_seconds_bucket{route="/a",le="+Inf"} 3',
        't_seconds_sum{route="/a"} 5.55',
        't_seconds_count{route="/a"} 3',
        "# HELP t_cached Cached",
        "# TYPE t_cached gauge",
        "t_cached 7",
        "# HELP t_failed_total Failed",
        "# TYPE t_failed_total counter",
        "t_failed_total 2",
    ]


def test_registering_twice_returns_the_same_metric() -> None:
    registry = Registry()
    first = registry.counter("t_total", "x", ("a",))
    assert registry.counter("t_total", "x", ("a",)) is first
    with pytest.raises(ValueError, match="registered differently"):
        registry.gauge("t_total", "x", ("a",))
    with pytest.raises(ValueError, match="takes labels"):
        first.labels()
    with pytest.raises(ValueError, match="only goes up"):
        first.labels("x").inc(-1)
