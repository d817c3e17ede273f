"""``livescore status [--json] [--watch]``: is everything flowing, and if not,
where is it stuck? One screen of feeds, queue, relay, edge nodes and matches.

Read-only: it reads PostgreSQL (``store.status``, ``store.changes``,
``store.feeds``) and Redis (``livescore.feed_health``, ``livescore.beats``,
SAQ's lists) and judges what it read with ``livescore.diagnosis.judge``.
Exit 0 when healthy, 1 with the reasons when not (so cron and container
health checks can use it). A dependency that cannot be read is itself a
problem; what it would have shown is ``null``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click
import orjson

from commands.app import App, pass_app, run

if TYPE_CHECKING:  # imported where used: `livescore --help` stays fast
    from livescore import beats, diagnosis, feed_health
    from livescore.config import Settings
    from livescore.runtime import Endpoints

#: Seconds each read may take before it counts as unreadable.
READ_TIMEOUT = 5.0


@dataclass
class Report:
    """What ``--json`` prints (``to_json``) and the text screen shows."""

    time: float
    feeds: list[dict[str, Any]] | None = None
    queue: dict[str, Any] | None = None
    relay: dict[str, Any] | None = None
    nodes: list[dict[str, Any]] | None = None
    matches: dict[str, Any] | None = None
    #: the last provider standings cross-checks (informational: never a problem)
    standings: list[dict[str, Any]] | None = None
    problems: list[diagnosis.Problem] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "time": _iso(self.time),
            "healthy": not self.problems,
            "feeds": self.feeds,
            "queue": self.queue,
            "relay": self.relay,
            "nodes": self.nodes,
            "matches": self.matches,
            "standings": self.standings,
            "problems": [p.to_json() for p in self.problems],
        }


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _ago(ts: float | None, now: float) -> float | None:
    return None if ts is None else round(now - ts, 1)


@dataclass
class _Postgres:
    feeds: list[Any]
    activity: dict[str, Any]
    counts: Any
    backlog: Any
    leader: Any
    checks: list[dict[str, Any]]


async def _read_postgres(dsn: str) -> _Postgres:
    from store.changes import backlog
    from store.db import connect
    from store.feeds import list_feeds
    from store.standings import recent_checks
    from store.status import feed_activity, match_counts, relay_leader

    conn = await connect(dsn, connect_timeout=READ_TIMEOUT)
    async with conn:
        return _Postgres(
            await list_feeds(conn),
            await feed_activity(conn),
            await match_counts(conn),
            await backlog(conn),
            await relay_leader(conn),
            await recent_checks(conn),
        )


@dataclass
class _Redis:
    feeds: list[feed_health.FeedState]
    depth: int
    running: int
    failed: int
    workers: list[beats.ProcessBeat]
    tick_at: float | None
    nodes: list[beats.NodeBeat]


async def _read_redis(url: str, keys: Any, feeds: list[Any]) -> _Redis:
    from livescore import beats, feed_health
    from livescore.runtime import redis_client
    from pipeline.budget import budget_limit

    redis = redis_client(url, socket_timeout=READ_TIMEOUT)
    try:
        states = await feed_health.read_feeds(
            redis, keys, [(feed.name, budget_limit(feed)) for feed in feeds]
        )
        depth = int(await redis.llen(f"saq:{keys.queue_name}:queued"))  # type: ignore[misc]
        running = int(await redis.llen(f"saq:{keys.queue_name}:active"))  # type: ignore[misc]
        return _Redis(
            states,
            depth,
            running,
            await beats.failed_jobs(redis, keys),
            await beats.read_processes(redis, keys),
            await beats.last_tick(redis, keys),
            await beats.read_nodes(redis, keys),
        )
    finally:
        await redis.aclose()


async def gather(
    settings: Settings, endpoints: Endpoints, *, feed_failing_after: int | None = None
) -> Report:
    """Read everything, judge it: one report."""
    from livescore import diagnosis
    from livescore.keys import Keys

    keys = Keys(settings.redis_prefix)
    now = time.time()
    report = Report(now)
    unreadable: dict[str, str] = {}
    pg: _Postgres | None = None
    rd: _Redis | None = None
    try:
        async with asyncio.timeout(READ_TIMEOUT * 2):
            pg = await _read_postgres(endpoints.database_url)
    except Exception as exc:  # any failure to read is reported, not raised
        unreadable["postgres"] = f"{type(exc).__name__}: {exc}"
    try:
        async with asyncio.timeout(READ_TIMEOUT * 2):
            rd = await _read_redis(endpoints.redis_url, keys, pg.feeds if pg else [])
    except Exception as exc:  # any failure to read is reported, not raised
        unreadable["redis"] = f"{type(exc).__name__}: {exc}"

    observed_feeds: list[diagnosis.FeedView] | None = None
    if pg is not None:
        states = {s.name: s for s in rd.feeds} if rd else {}
        report.feeds = []
        observed_feeds = []
        for feed in pg.feeds:
            state = states.get(feed.name)
            activity = pg.activity.get(feed.name)
            entry: dict[str, Any] = {
                "name": feed.name,
                "kind": feed.kind,
                "enabled": feed.enabled,
                "priority": feed.priority,
                "observationsLastHour": activity.observations if activity else 0,
                "rejectedLastHour": activity.rejected if activity else 0,
            }
            if state is not None:
                entry |= {
                    "lastPoll": _iso(state.last_poll),
                    "lastSuccess": _iso(state.last_success),
                    "lastError": state.last_error,
                    "lastErrorKind": state.last_error_kind,
                    "lastErrorAt": _iso(state.last_error_at),
                    "failuresInRow": state.failures_in_row,
                    "polls": state.polls,
                    "errors": state.errors,
                    "budgetUsed": state.budget_used,
                    "budgetLimit": state.budget_limit,
                    "budgetLeft": state.budget_left,
                    "pausedUntil": _iso(now + state.paused_for_s) if state.paused_for_s else None,
                }
                observed_feeds.append(
                    diagnosis.FeedView(
                        feed.name,
                        feed.enabled,
                        state.failures_in_row,
                        state.last_error,
                        _ago(state.last_success, now),
                    )
                )
            report.feeds.append(entry)
        report.matches = {
            "live": pg.counts.live,
            "stale": pg.counts.stale,
            "overridden": pg.counts.overridden,
            "staleIds": pg.counts.stale_ids,
        }
        report.standings = [
            {
                "competitionId": c["competition_id"],
                "competition": c["competition"],
                "feed": c["feed"],
                "season": c["season"],
                "checkedAt": c["checked_at"].isoformat(timespec="seconds"),
                "disagreements": len(c["disagreements"]),
                "first": c["disagreements"][:3],
            }
            for c in pg.checks
        ]
    workers = [w for w in rd.workers if w.kind == "worker"] if rd else None
    if rd is not None and workers is not None:
        report.queue = {
            "name": keys.queue_name,
            "depth": rd.depth,
            "running": rd.running,
            "failedLastHour": rd.failed,
            "workersAlive": len(workers),
            "workers": [
                {
                    "id": w.id,
                    "uptimeSeconds": round(now - w.started, 1),
                    "lastBeatSecondsAgo": round(now - w.at, 1),
                    "stuck": w.stuck_loops(now),
                    "relayLeader": bool(w.extra.get("relayLeader")),
                }
                for w in workers
            ],
            "tickLastRunSecondsAgo": _ago(rd.tick_at, now),
        }
        report.nodes = _nodes(rd.nodes, now)
    report.relay = _relay(settings, pg, workers)
    report.problems = diagnosis.judge(
        diagnosis.Observed(
            feeds=observed_feeds,
            workers=None
            if workers is None
            else [diagnosis.WorkerView(w.id, tuple(w.stuck_loops(now))) for w in workers],
            relay_backlog=pg.backlog.count if pg else None,
            relay_oldest_age_s=pg.backlog.oldest_age_s if pg else None,
            stale_live=pg.counts.stale if pg else None,
            stale_ids=tuple(pg.counts.stale_ids) if pg else (),
            unreadable=unreadable,
        ),
        diagnosis.Thresholds(
            relay_stall_after_s=settings.relay_stall_after_s,
            feed_failing_after=feed_failing_after or diagnosis.FEED_FAILING_AFTER,
        ),
    )
    return report


def _relay(
    settings: Settings, pg: _Postgres | None, workers: list[beats.ProcessBeat] | None
) -> dict[str, Any] | None:
    if pg is None and workers is None:
        return None
    leading = [w for w in workers or [] if w.extra.get("relayLeader")]
    relay: dict[str, Any] = {
        "stallAfterSeconds": settings.relay_stall_after_s,
        "leader": None,
        "lag": leading[0].extra.get("relayLag") if leading else None,
    }
    if pg is not None:
        age = pg.backlog.oldest_age_s
        relay |= {
            "backlog": pg.backlog.count,
            "oldestUnpublishedSeconds": None if age is None else round(age, 2),
            "held": [h.to_json() for h in pg.backlog.held],
        }
        if pg.leader is not None:
            relay["leader"] = {
                "worker": leading[0].id if leading else None,
                "pid": pg.leader.pid,
                "client": pg.leader.client,
                "since": pg.leader.since.isoformat() if pg.leader.since else None,
            }
    elif leading:
        relay["leader"] = {"worker": leading[0].id, "pid": None, "client": None, "since": None}
    return relay


def _nodes(found: list[beats.NodeBeat], now: float) -> list[dict[str, Any]]:
    by_node: dict[str, list[beats.NodeBeat]] = {}
    for beat in found:
        by_node.setdefault(beat.node, []).append(beat)
    return [
        {
            "id": node,
            "workers": len(procs),
            "connections": sum(p.connections for p in procs),
            "subscriptions": sum(p.subscriptions for p in procs),
            "uptimeSeconds": round(now - min(p.started for p in procs), 1),
            "version": sorted({p.version for p in procs})[-1],
            "lastBeatSecondsAgo": round(now - max(p.at for p in procs), 1),
        }
        for node, procs in sorted(by_node.items())
    ]


# -- the text screen ------------------------------------------------------------------


def _value(value: Any) -> str:
    return "-" if value is None else str(value)


def _when(iso: str | None, now: float) -> str:
    if iso is None:
        return "never"
    seconds = now - datetime.fromisoformat(iso).timestamp()
    return f"{seconds:.0f}s ago" if seconds < 3600 else iso


def render(report: Report) -> str:
    now = report.time
    lines = [f"livescore status at {_iso(now)}"]
    lines += _section(
        "FEEDS",
        report.feeds,
        _POSTGRES_UNREADABLE,
        "no feeds configured (`livescore providers add`)",
        lambda feed: _feed_lines(feed, now),
    )
    lines += _section("QUEUE", _one(report.queue), _REDIS_UNREADABLE, "", _queue_lines)
    lines += _section("RELAY", _one(report.relay), "nothing could be read", "", _relay_lines)
    lines += _section("EDGE NODES", report.nodes, _REDIS_UNREADABLE, "none alive", _node_lines)
    lines += _section("MATCHES", _one(report.matches), _POSTGRES_UNREADABLE, "", _match_lines)
    lines += _section(
        "STANDINGS CROSS-CHECK (provider tables against ours; never applied)",
        report.standings,
        _POSTGRES_UNREADABLE,
        "no check yet (football-data / api-football feeds, every 30 min)",
        _check_lines,
    )
    lines.append("")
    if report.problems:
        lines.append(f"PROBLEMS ({len(report.problems)})")
        lines.extend(f"  [{p.code}] {p.message}" for p in report.problems)
    else:
        lines.append("HEALTHY: no problems")
    return "\n".join(lines)


_POSTGRES_UNREADABLE = "PostgreSQL could not be read"
_REDIS_UNREADABLE = "Redis could not be read"


def _section(
    title: str,
    items: list[dict[str, Any]] | None,
    unreadable: str,
    empty: str,
    item_lines: Callable[[dict[str, Any]], list[str]],
) -> list[str]:
    """One section of the screen: a blank line, its title, then why it shows nothing
    (``items`` None: its source could not be read; no items: ``empty``) or the
    lines of each item."""
    if items is None:
        body = [f"  ({unreadable})"]
    elif not items:
        body = [f"  {empty}"]
    else:
        body = [line for item in items for line in item_lines(item)]
    return ["", title, *body]


def _one(item: dict[str, Any] | None) -> list[dict[str, Any]] | None:
    """A section about one thing (the queue, the relay, the match counts)."""
    return None if item is None else [item]


def _feed_lines(feed: dict[str, Any], now: float) -> list[str]:
    budget = (
        "no budget"
        if feed.get("budgetLimit") is None
        else f"budget {feed.get('budgetUsed')}/{feed.get('budgetLimit')} this minute"
    )
    state = "enabled" if feed["enabled"] else "disabled"
    extra = [
        f"{feed['observationsLastHour']} observations / "
        f"{feed['rejectedLastHour']} rejected in the last hour"
    ]
    if feed.get("failuresInRow"):
        extra.append(f"{feed['failuresInRow']} failure(s) in a row, last: {feed.get('lastError')}")
    if feed.get("pausedUntil"):
        extra.append(f"paused until {feed['pausedUntil']}")
    return [
        f"  {feed['name']} ({feed['kind']}, {state}): last poll "
        f"{_when(feed.get('lastPoll'), now)}, "
        f"last success {_when(feed.get('lastSuccess'), now)}"
        f", {budget}",
        "    " + "; ".join(extra),
    ]


def _queue_lines(queue: dict[str, Any]) -> list[str]:
    tick = (
        "never ran"
        if queue["tickLastRunSecondsAgo"] is None
        else f"{queue['tickLastRunSecondsAgo']:.0f}s ago"
    )
    lines = [
        f"  {queue['name']}: {queue['depth']} queued, {queue['running']} running, "
        f"{queue['failedLastHour']} failed in the last hour; "
        f"{queue['workersAlive']} worker(s) alive; cron tick {tick}"
    ]
    for worker in queue["workers"]:
        flags = " (relay leader)" if worker["relayLeader"] else ""
        stuck = f" STUCK: {', '.join(worker['stuck'])}" if worker["stuck"] else ""
        lines.append(f"    {worker['id']}: up {worker['uptimeSeconds']:.0f}s{flags}{stuck}")
    return lines


def _relay_lines(relay: dict[str, Any]) -> list[str]:
    leader = relay.get("leader")
    who = (
        "no relay leads"
        if leader is None
        else f"leader {leader.get('worker') or 'pid ' + _value(leader.get('pid'))}"
    )
    lag = relay.get("lag") or {}
    lag_text = (
        f"commit-to-publish lag p50 {lag['p50'] * 1000:.0f} ms, p99 {lag['p99'] * 1000:.0f} ms"
        if lag.get("count")
        else "no recent publishes"
    )
    lines = [
        f"  {who}; backlog {_value(relay.get('backlog'))}, oldest "
        f"{_value(relay.get('oldestUnpublishedSeconds'))}s "
        f"(stalled after {relay['stallAfterSeconds']}s); {lag_text}"
    ]
    if relay.get("held"):
        lines.append(f"  {len(relay['held'])} match(es) held: `livescore relay held`")
    return lines


def _node_lines(node: dict[str, Any]) -> list[str]:
    return [
        f"  {node['id']}: {node['workers']} worker(s), {node['connections']} connections, "
        f"{node['subscriptions']} subscriptions, up {node['uptimeSeconds']:.0f}s, "
        f"version {node['version']}"
    ]


def _match_lines(matches: dict[str, Any]) -> list[str]:
    return [
        f"  {matches['live']} live, {matches['stale']} stale, {matches['overridden']} overridden"
    ]


def _check_lines(check: dict[str, Any]) -> list[str]:
    verdict = (
        "agrees"
        if not check["disagreements"]
        else f"{check['disagreements']} disagreement(s), e.g. "
        + "; ".join(
            f"{d['team']} {d['field']} ours {d['ours']} theirs {d['theirs']}"
            for d in check["first"]
        )
    )
    return [
        f"  {check['competition']} {check['season']} vs {check['feed']} "
        f"({check['checkedAt']}): {verdict}"
    ]


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object instead")
@click.option("--watch", is_flag=True, help="refresh every --every seconds until Ctrl-C")
@click.option("--every", type=float, default=2.0, show_default=True, help="seconds (--watch)")
@click.option(
    "--feed-failures",
    type=click.IntRange(1, 1000),
    default=None,
    help="polls in a row a feed may fail before it is a problem (default 3)",
)
@pass_app
def status_cmd(
    app: App, as_json: bool, watch: bool, every: float, feed_failures: int | None
) -> None:
    """Feeds, queue, relay, edge nodes and matches on one screen.

    Exits 0 when healthy, 1 with the reasons when not: no worker alive, relay
    backlog older than LIVESCORE_RELAY_STALL_AFTER, a feed failing repeatedly,
    stale live matches, PostgreSQL or Redis unreadable."""
    settings, endpoints = app.settings, app.endpoints

    def show() -> Report:
        report = run(gather(settings, endpoints, feed_failing_after=feed_failures))
        if as_json:
            click.echo(orjson.dumps(report.to_json()).decode())
        else:
            if watch:
                click.clear()
            click.echo(render(report))
        return report

    report = show()
    try:
        while watch:
            time.sleep(max(every, 0.2))
            report = show()
    except KeyboardInterrupt:
        pass
    raise SystemExit(1 if report.problems else 0)
