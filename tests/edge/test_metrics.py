"""The hand-rolled Prometheus registry renders valid text exposition format, and
every scrape of a node with several workers shows the node's totals."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import httpx
import orjson
import pytest
from websockets.exceptions import InvalidStatus

from edge.metrics import Registry, parse_snapshot, render_snapshots
from edge.metrics_share import MAX_AGE, MetricsShare
from tests.edge.conftest import EdgeNode, EdgeServers
from tests.waiting import eventually
from tests.ws.helpers import WsClient, ws_url


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


# -- merging the workers' snapshots --------------------------------------------------------


def two_workers() -> tuple[Registry, Registry]:
    """Two registries declaring the same metrics, as two workers of one node do."""
    a, b = Registry(), Registry()
    for registry in (a, b):
        registry.counter("t_requests_total", "Requests", ("route", "status"))
        registry.gauge("t_sockets", "Open sockets")
        registry.histogram("t_seconds", "Latency", ("route",), buckets=(0.1, 1.0))
    return a, b


def test_render_snapshots_sums_each_label_set_and_keeps_the_ones_only_one_worker_has() -> None:
    a, b = two_workers()
    a.counter("t_requests_total", "Requests", ("route", "status")).labels("/a", "200").inc(3)
    requests_b = b.counter("t_requests_total", "Requests", ("route", "status"))
    requests_b.labels("/b", "500").inc()
    requests_b.labels("/a", "200").inc(4)
    a.gauge("t_sockets", "Open sockets").labels().inc(2)
    b.gauge("t_sockets", "Open sockets").labels().inc(5)
    a.histogram("t_seconds", "Latency", ("route",), (0.1, 1.0)).labels("/a").observe(0.05)
    latency_b = b.histogram("t_seconds", "Latency", ("route",), (0.1, 1.0))
    latency_b.labels("/a").observe(0.5)
    latency_b.labels("/a").observe(5.0)
    latency_b.labels("/b").observe(0.01)
    a.gauge_callback("t_cached", "Cached", lambda: 7)
    b.gauge_callback("t_cached", "Cached", lambda: 1)
    b.counter_callback("t_only_b_total", "Only on b", lambda: 2)
    text = render_snapshots([a.snapshot(), b.snapshot()])
    assert text.splitlines() == [
        "# HELP t_requests_total Requests",
        "# TYPE t_requests_total counter",
        't_requests_total{route="/a",status="200"} 7',
        't_requests_total{route="/b",status="500"} 1',
        "# HELP t_sockets Open sockets",
        "# TYPE t_sockets gauge",
        "t_sockets 7",
        "# HELP t_seconds Latency",
        "# TYPE t_seconds histogram",
        't_seconds_bucket{route="/a",le="0.1"} 1',
        't_seconds_bucket{route="/a",le="1"} 2',
        't_seconds_bucket{route="/a",le="+Inf"} 3',
        't_seconds_sum{route="/a"} 5.55',
        't_seconds_count{route="/a"} 3',
        't_seconds_bucket{route="/b",le="0.1"} 1',
        't_seconds_bucket{route="/b",le="1"} 1',
        't_seconds_bucket{route="/b",le="+Inf"} 1',
        't_seconds_sum{route="/b"} 0.01',
        't_seconds_count{route="/b"} 1',
        "# HELP t_cached Cached",
        "# TYPE t_cached gauge",
        "t_cached 8",
        "# HELP t_only_b_total Only on b",
        "# TYPE t_only_b_total counter",
        "t_only_b_total 2",
    ]
    # merging never changes what it merged: the next scrape starts from the same numbers
    assert render_snapshots([a.snapshot(), b.snapshot()]) == text


def test_a_metric_of_another_shape_is_left_out_of_the_sum() -> None:
    a, b = Registry(), Registry()
    a.counter("t_total", "x", ("route",)).labels("/a").inc()
    b.counter("t_total", "x", ("method",)).labels("GET").inc(5)
    a.histogram("t_seconds", "x", buckets=(1.0,)).labels().observe(0.5)
    b.histogram("t_seconds", "x", buckets=(2.0,)).labels().observe(0.5)
    assert render_snapshots([a.snapshot(), b.snapshot()]) == a.render()


def test_a_snapshot_sent_as_json_renders_as_the_registry_does() -> None:
    registry, _ = two_workers()
    registry.counter("t_requests_total", "Requests", ("route", "status")).labels("/a", "200").inc()
    registry.histogram("t_seconds", "Latency", ("route",), (0.1, 1.0)).labels("/a").observe(0.3)
    registry.gauge_callback("t_cached", "Cached", lambda: 7)
    received = parse_snapshot(orjson.loads(orjson.dumps(registry.snapshot())))
    assert render_snapshots([received]) == registry.render()


def test_cluster_wide_readings_take_the_largest_worker_value_not_the_sum() -> None:
    """Every worker reads the same relay backlog or feed record: a node of two
    workers shows it once (``merge="max"``), even through the JSON snapshots."""
    a, b = Registry(), Registry()
    a.gauge_callback("t_backlog", "Backlog", lambda: 4, merge="max")
    b.gauge_callback("t_backlog", "Backlog", lambda: 5, merge="max")
    a.readings("t_feed_polls_total", "Polls", ("feed",), lambda: {("fd",): 10.0}, kind="counter")
    b.readings(
        "t_feed_polls_total", "Polls", ("feed",), lambda: {("fd",): 11.0, ("x",): 1.0},
        kind="counter",
    )  # fmt: skip
    a.gauge_callback("t_summed", "Summed", lambda: 4)
    b.gauge_callback("t_summed", "Summed", lambda: 5)
    received = parse_snapshot(orjson.loads(orjson.dumps(b.snapshot())))
    text = render_snapshots([a.snapshot(), received])
    assert "t_backlog 5\n" in text
    assert 't_feed_polls_total{feed="fd"} 11\n' in text
    assert 't_feed_polls_total{feed="x"} 1\n' in text
    assert "# TYPE t_feed_polls_total counter\n" in text
    assert "t_summed 9\n" in text
    assert a.value("t_summed") == 4 and a.value("t_no_such") is None
    with pytest.raises(ValueError):
        parse_snapshot({"t": {**a.snapshot()["t_backlog"], "merge": "mean"}})


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"t": []},
        {"t": {"kind": "summary", "help": "", "labelnames": [], "buckets": [], "samples": []}},
        {"t": {"kind": "gauge", "help": "", "labelnames": ["a"], "buckets": [], "samples": [
            {"labels": [], "value": 1.0, "counts": []}]}},
        {"t": {"kind": "gauge", "help": "", "labelnames": [], "buckets": [], "samples": [
            {"labels": [], "value": "1", "counts": []}]}},
        {"t": {"kind": "histogram", "help": "", "labelnames": [], "buckets": [1.0], "samples": [
            {"labels": [], "value": 1.0, "counts": [1]}]}},
        {"t": {"kind": ["gauge"], "help": "", "labelnames": [], "buckets": [], "samples": []}},
    ],
)  # fmt: skip
def test_parse_snapshot_refuses_what_is_not_a_snapshot(data: object) -> None:
    with pytest.raises(ValueError):
        parse_snapshot(data)


def test_a_worker_adds_the_fresh_files_of_the_others_and_skips_stale_corrupt_and_its_own(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    own, other = two_workers()
    own.gauge("t_sockets", "Open sockets").labels().inc(2)
    other.gauge("t_sockets", "Open sockets").labels().inc(3)
    share = MetricsShare(tmp_path, own)
    (tmp_path / "101.json").write_bytes(orjson.dumps(other.snapshot()))
    (tmp_path / "102.json").write_bytes(orjson.dumps(other.snapshot()))
    old = time.time() - MAX_AGE - 1  # a worker that died: its file stopped changing
    os.utime(tmp_path / "102.json", (old, old))
    (tmp_path / "103.json").write_bytes(b'{"t_sockets": {"kind": "gauge"')  # not JSON
    (tmp_path / "104.json").write_bytes(b'{"t_sockets": 3}')  # JSON, not a snapshot
    (tmp_path / "105.tmp").write_bytes(orjson.dumps(other.snapshot()))  # being written
    (tmp_path / f"{os.getpid()}.json").write_bytes(orjson.dumps(other.snapshot()))  # stale self
    with caplog.at_level(logging.WARNING, "livescore.edge.metrics"):
        text = share.render()
    assert "t_sockets 5" in text.splitlines()
    skipped = [r.getMessage() for r in caplog.records]
    assert len(skipped) == 2
    assert all(m.startswith("edge.metrics_file_skipped path=") for m in skipped)
    assert {m.split()[1] for m in skipped} == {
        f"path={tmp_path / '103.json'}",
        f"path={tmp_path / '104.json'}",
    }
    # rendering published this worker's own numbers, for the other workers' scrapes
    assert orjson.loads((tmp_path / f"{os.getpid()}.json").read_bytes()) == own.snapshot()


# -- a node of two workers ------------------------------------------------------------------


def node_total(text: str, name: str, labels: str = "") -> float:
    """The sum of the samples of ``name`` (whose labels start with ``labels``)."""
    total = 0.0
    for line in text.splitlines():
        series, _, value = line.rpartition(" ")
        if series == name or series.startswith(f"{name}{{{labels}"):
            total += float(value)
    return total


async def scrape(node: EdgeNode) -> str:
    # a fresh connection each time: it lands on either worker
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{node.url}/metrics")
    assert response.status_code == 200
    return response.text


async def scrapes_agree(node: EdgeNode, connections: int) -> None:
    """Wait (bounded) until a scrape counts ``connections``, then 10 in a row must too,
    while the node's count of /metrics requests never goes back."""

    async def counted() -> bool:
        return node_total(await scrape(node), "livescore_ws_connections") == connections

    # a loaded CI machine starts workers slowly
    await eventually(counted, 30, f"a scrape showing {connections} connections", every=0.1)
    texts = [await scrape(node) for _ in range(10)]
    assert [node_total(t, "livescore_ws_connections") for t in texts] == [connections] * 10
    served = [node_total(t, "livescore_http_requests_total", 'route="/metrics"') for t in texts]
    assert served == sorted(served) and served[-1] > served[0], served


async def test_every_scrape_of_a_two_worker_node_shows_the_node_totals(
    edge_server: EdgeServers,
) -> None:
    (node,) = edge_server.start(1, workers=2)
    clients = [WsClient(ws_url(node)) for _ in range(8)]

    async def opened(client: WsClient) -> bool:
        try:
            await client.__aenter__()
        except InvalidStatus as exc:
            # /health was answered by one worker; the other may still be starting, and
            # says so (503 "starting", Retry-After): a flake of 1 in 15 loaded runs
            if exc.response.status_code != 503:
                raise
            return False
        return True

    try:
        for client in clients:
            await eventually(lambda c=client: opened(c), 30, "a worker to accept /ws")
        await scrapes_agree(node, len(clients))
        for client in clients[5:]:
            await client.aclose()
        await scrapes_agree(node, 5)
    finally:
        for client in clients:
            await client.aclose()
