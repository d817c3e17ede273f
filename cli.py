"""The ``livescore`` command (click). Thin: every command parses its options,
calls one function of a layer, and prints the result. Domain errors become
one-line messages (exit 1); usage errors exit 2."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from livescore import embedded, logs
from livescore.config import Settings, load_settings
from livescore.errors import LiveScoreError
from livescore.runtime import Endpoints, resolve

T = TypeVar("T")


class App:
    """Lazily loaded settings and endpoints shared by the commands of one invocation."""

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._endpoints: Endpoints | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
            logs.setup(self._settings.log_level)
        return self._settings

    @property
    def endpoints(self) -> Endpoints:
        if self._endpoints is None:
            self._endpoints = resolve(self.settings)
        return self._endpoints


class Group(click.Group):
    """A click group that turns LiveScoreError into a one-line error (exit 1)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LiveScoreError as exc:
            raise click.ClickException(str(exc)) from exc


def run(coro: Awaitable[T]) -> T:
    async def _main() -> T:
        return await coro

    return asyncio.run(_main())


def pass_app(fn: Callable[..., T]) -> Callable[..., T]:
    @click.pass_obj
    @functools.wraps(fn)
    def wrapper(app: App, *args: Any, **kwargs: Any) -> T:
        return fn(app, *args, **kwargs)

    return wrapper


@click.group(cls=Group)
@click.version_option(package_name="livescore")
@click.pass_context
def main(ctx: click.Context) -> None:
    """LiveScore: real-time sports scores from provider feeds to REST and WebSocket clients.

    With DATABASE_URL / REDIS_URL unset, commands use a private PostgreSQL and
    Redis started from pip-installed wheels (data under LIVESCORE_DATA_DIR).
    """
    ctx.obj = App()


# -- db ---------------------------------------------------------------------------------


@main.group(cls=Group)
def db() -> None:
    """Schema migrations, seed data and the embedded servers."""


async def migrate_db(app: App) -> list[str]:
    """Apply pending migrations on one short connection; the names applied."""
    from store.db import connect
    from store.migrate import migrate

    conn = await connect(app.endpoints.database_url)
    async with conn:
        return [f"{m.version:04d}_{m.name}" for m in await migrate(conn)]


@db.command("migrate")
@pass_app
def db_migrate(app: App) -> None:
    """Apply pending migrations (idempotent: a second run changes nothing)."""
    applied = run(migrate_db(app))
    if applied:
        for name in applied:
            click.echo(f"applied {name}")
    else:
        click.echo("schema is up to date; nothing to apply")


@db.command("seed")
@pass_app
def db_seed(app: App) -> None:
    """Load a small realistic matchday (idempotent)."""
    from store.db import connect
    from store.seed import seed

    async def go() -> int:
        await migrate_db(app)
        conn = await connect(app.endpoints.database_url)
        async with conn:
            return await seed(conn)

    created = run(go())
    click.echo(f"seeded {created} matches" if created else "already seeded; nothing added")


@db.command("status")
@pass_app
def db_status(app: App) -> None:
    """Say what runs where: embedded servers or configured URLs, and migrations."""
    from store.db import connect, redact
    from store.migrate import applied_versions, load_migrations

    settings = app.settings
    if settings.database_url:
        click.echo(f"postgres: external at {redact(settings.database_url)}")
    if settings.redis_url:
        click.echo(f"redis: external at {settings.redis_url}")
    for server in embedded.status(settings.data_dir):
        if (server.name == "postgres" and settings.database_url) or (
            server.name == "redis" and settings.redis_url
        ):
            continue
        click.echo(f"{server.describe()} (embedded)")
    statuses = {s.name: s for s in embedded.status(settings.data_dir)}
    if settings.database_url or statuses["postgres"].running:
        url = settings.database_url or statuses["postgres"].url or ""

        async def go() -> list[int]:
            conn = await connect(url)
            async with conn:
                return await applied_versions(conn)

        done = run(go())
        total = len(load_migrations())
        click.echo(f"migrations: {len(done)} of {total} applied")


@db.command("stop")
@pass_app
def db_stop(app: App) -> None:
    """Stop the embedded PostgreSQL and Redis (their data is kept)."""
    stopped = embedded.stop(app.settings.data_dir)
    click.echo(f"stopped {', '.join(stopped)}" if stopped else "no embedded server was running")


# -- pipeline: worker, providers, ingest, record, replay, override -------------------------


def _duration(text: str) -> float:
    """'15s', '10m', '1h' or plain seconds -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600}
    text = text.strip().lower()
    try:
        if text and text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a duration like 15s, 10m or 1h") from None


_SIZE_UNITS = {"": 1, "b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2}


def _size(text: str) -> int:
    """'10MiB', '512KiB', '20MB' or plain bytes -> bytes."""
    import re

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    unit = match[2].lower() if match else ""
    if match is None or unit not in _SIZE_UNITS:
        raise click.BadParameter(f"{text!r} is not a size like 10MiB, 512KiB or 2000000")
    size = int(float(match[1]) * _SIZE_UNITS[unit])
    if not 1024 <= size <= 1024**3:
        raise click.BadParameter(f"{text!r}: give a size between 1KiB and 1024MiB")
    return size


@contextlib.asynccontextmanager
async def pipeline_context(app: App) -> AsyncIterator[Any]:
    from pipeline.context import PipelineContext
    from store.migrate import migrate

    pctx = await PipelineContext.open(app.settings, app.endpoints)
    try:
        async with pctx.pool.connection() as conn:
            await migrate(conn)
        yield pctx
    finally:
        await pctx.close()


def in_db(app: App, fn: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``fn(conn)`` on a migrated database connection (one CLI action)."""

    async def go() -> T:
        async with pipeline_context(app) as pctx, pctx.pool.connection() as conn:
            return await fn(conn)

    return run(go())


@main.command("worker")
@pass_app
def worker_cmd(app: App) -> None:
    """Run a SAQ worker (polling, reconciliation, automation) and the outbox relay."""
    from pipeline.worker import run_worker

    async def go() -> None:
        await migrate_db(app)
        await run_worker(app.settings, app.endpoints)

    click.echo(f"worker on queue {app.settings.redis_prefix}:jobs (Ctrl-C stops)")
    run(go())


@main.group(cls=Group)
def providers() -> None:
    """Configure provider feeds (stored in Postgres; secrets stay in the environment)."""


@providers.command("add")
@click.argument("name")
@click.option(
    "--kind",
    required=True,
    type=click.Choice(["football-data", "api-football", "espn", "thesportsdb", "fixture"]),
)
@click.option(
    "--base-url",
    help="a mirror, proxy or local test server: http:// or https:// only (fixture: PATH[#FEED])",
)
@click.option(
    "--secret-env", help="environment variable holding the API key, e.g. API_FOOTBALL_KEY"
)
@click.option(
    "--priority",
    type=click.IntRange(1, 1000),
    default=100,
    show_default=True,
    help="lower numbers are trusted first",
)
@click.option("--competitions", default="", help="comma-separated provider competition codes")
@click.option("--poll-live", default="15s", show_default=True, help="cadence while live")
@click.option("--poll-idle", default="10m", show_default=True, help="cadence otherwise")
@click.option("--budget", type=click.IntRange(1, 100_000), help="requests per minute allowed")
@click.option(
    "--max-body",
    help="largest response body accepted, e.g. 20MiB; a larger one is refused unread  "
    "[default: 10MiB]",
)
@pass_app
def providers_add(
    app: App,
    name: str,
    kind: str,
    base_url: str | None,
    secret_env: str | None,
    priority: int,
    competitions: str,
    poll_live: str,
    poll_idle: str,
    budget: int | None,
    max_body: str | None,
) -> None:
    """Add feed NAME of kind KIND."""
    from livescore.errors import ConfigError
    from livescore.feeds import FeedConfig, check_base_url
    from store.feeds import add_feed

    try:
        check_base_url(kind, base_url)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--base-url") from exc

    feed = FeedConfig(
        name=name,
        kind=kind,
        base_url=base_url,
        secret_env=secret_env,
        priority=priority,
        competitions=tuple(c.strip() for c in competitions.split(",") if c.strip()),
        poll_live_s=_duration(poll_live),
        poll_idle_s=_duration(poll_idle),
        budget_per_minute=budget,
        max_body_bytes=_size(max_body) if max_body is not None else None,
    )

    in_db(app, lambda conn: add_feed(conn, feed))
    click.echo(f"added feed {name} ({kind}, priority {priority})")


@providers.command("list")
@pass_app
def providers_list(app: App) -> None:
    """List the configured feeds."""
    import os

    from store.feeds import list_feeds

    feeds = in_db(app, list_feeds)
    if not feeds:
        click.echo("no feeds configured; add one with `livescore providers add`")
    for feed in feeds:
        secret = ""
        if feed.secret_env:
            state = "set" if os.environ.get(feed.secret_env) else "NOT SET"
            secret = f" secret=${feed.secret_env} ({state})"
        click.echo(
            f"{feed.name:<20} {feed.kind:<14} {'enabled ' if feed.enabled else 'disabled'} "
            f"priority={feed.priority} live={feed.poll_live_s:g}s idle={feed.poll_idle_s:g}s"
            f"{secret}{' base=' + feed.base_url if feed.base_url else ''}"
            f"{f' max-body={feed.max_body_bytes}' if feed.max_body_bytes else ''}"
        )


def _set_enabled(app: App, name: str, enabled: bool) -> None:
    from store.feeds import set_enabled

    in_db(app, lambda conn: set_enabled(conn, name, enabled))
    click.echo(f"{'enabled' if enabled else 'disabled'} feed {name}")


@providers.command("enable")
@click.argument("name")
@pass_app
def providers_enable(app: App, name: str) -> None:
    """Enable feed NAME (workers poll it)."""
    _set_enabled(app, name, True)


@providers.command("disable")
@click.argument("name")
@pass_app
def providers_disable(app: App, name: str) -> None:
    """Disable feed NAME (workers stop polling it)."""
    _set_enabled(app, name, False)


@providers.command("check")
@click.argument("name")
@pass_app
def providers_check(app: App, name: str) -> None:
    """Make one real request to feed NAME: status, latency, budget left, matches parsed."""
    from pipeline.checks import check_feed
    from store.feeds import get_feed

    async def go() -> Any:
        async with pipeline_context(app) as pctx:
            async with pctx.pool.connection() as conn:
                feed = await get_feed(conn, name)
            return await check_feed(pctx, feed)

    result = run(go())
    click.echo(result.describe())
    if not result.ok:
        raise SystemExit(1)


@main.command("ingest")
@click.option("--once", is_flag=True, help="poll now, report what changed, and exit")
@click.option("--provider", "feed_name", help="only this feed")
@pass_app
def ingest_cmd(app: App, once: bool, feed_name: str | None) -> None:
    """Poll the enabled feeds now and report what changed (the worker polls on its own)."""
    from livescore import clock
    from pipeline.polling import poll_feed
    from store.feeds import get_feed, list_feeds

    if not once:
        raise click.UsageError("only `ingest --once` exists; `livescore worker` polls continuously")

    async def go() -> int:
        failures = 0
        async with pipeline_context(app) as pctx:
            async with pctx.pool.connection() as conn:
                feeds = (
                    [await get_feed(conn, feed_name)]
                    if feed_name
                    else await list_feeds(conn, enabled_only=True)
                )
            if not feeds:
                click.echo("no enabled feeds; add one with `livescore providers add`")
            for feed in feeds:
                try:
                    outcome = await poll_feed(pctx, feed, "today", clock.now())
                except LiveScoreError as exc:
                    failures += 1
                    click.echo(f"{feed.name}: FAILED: {exc}", err=True)
                    continue
                report = outcome.report
                click.echo(
                    f"{feed.name}: {'changed' if outcome.changed else 'unchanged'}, "
                    f"{report.observations} observations, "
                    f"{report.matches_created} matches created, "
                    f"{len(report.changes)} changes, {len(report.rejected)} rejected"
                )
                for change in report.changes:
                    click.echo(f"  match {change.match_id} seq {change.seq} {change.type}")
                for reason in report.rejected + report.ambiguous:
                    click.echo(f"  rejected: {reason}")
                for error in outcome.malformed:
                    click.echo(f"  malformed (set aside): {error}")
        return failures

    if run(go()):
        raise SystemExit(1)


@main.command("record")
@click.option("--provider", "feed_name", required=True, help="the feed to record")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="fixtures/NAME")
@click.option("--every", default="30s", show_default=True, help="time between polls")
@click.option("--count", type=click.IntRange(1), default=1, show_default=True, help="polls to make")
@pass_app
def record_cmd(app: App, feed_name: str, out: str, every: str, count: int) -> None:
    """Save a feed's raw responses (today's list, then live) as a replayable recording."""
    from pipeline.recorder import record

    async def go() -> int:
        async with pipeline_context(app) as pctx:
            return await record(pctx, feed_name, out, every=_duration(every), count=count,
                                echo=click.echo)  # fmt: skip

    saved = run(go())
    click.echo(f"recorded {saved} responses into {out}")


@main.command("replay")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--speed",
    type=click.FloatRange(0),
    default=10.0,
    show_default=True,
    help="recorded seconds per wall second; 0 = as fast as possible",
)
@click.option(
    "--now",
    "from_now",
    is_flag=True,
    help="shift every recorded time so the first kickoff is two minutes from now "
    "(it shows up as today's matchday); what then lies in the past is replayed at once",
)
@pass_app
def replay_cmd(app: App, directory: str, speed: float, from_now: bool) -> None:
    """Drive the real pipeline from a recording, in recorded time order."""
    from datetime import timedelta

    from livescore import clock
    from pipeline.replay import replay
    from pipeline.timeshift import offset_to_now
    from providers.fixture import FixtureFeed

    shift = None
    if from_now:
        shift = offset_to_now(FixtureFeed(directory), clock.now(), timedelta(minutes=2))
        click.echo(f"recorded times shifted by {shift}")

    async def go() -> Any:
        async with pipeline_context(app) as pctx:
            result = await replay(
                pctx,
                directory,
                speed=speed,
                on_progress=lambda p: click.echo(p.line()),
                shift=shift,
            )
            from store.matches import get_matches

            async with pctx.pool.connection() as conn:
                matches = await get_matches(conn, sorted(result.report.touched_matches))
            return result, matches

    result, matches = run(go())
    click.echo(result.line() + f" in {result.elapsed:.1f}s")
    report = result.report
    click.echo(
        f"summary: {result.responses} responses, {report.observations} observations "
        f"({report.new_observations} new), {report.matches_created} matches created, "
        f"{len(report.changes)} changes, {len(report.rejected)} rejected, "
        f"{len(report.ambiguous)} ambiguous, {result.malformed} malformed"
    )
    if result.error_responses:
        click.echo(f"  {result.error_summary()} (skipped: they hold no matches)")
    for match in matches:
        click.echo(
            f"  #{match['id']:<4} {match['homeTeam']['name']} {match['homeScore']}-"
            f"{match['awayScore']} {match['awayTeam']['name']}  "
            f"[{match['status']}] seq={match['seq']}"
        )


@main.command("link")
@click.argument("kind", type=click.Choice(["match", "team", "competition"]))
@click.argument("provider")
@click.argument("provider_id")
@click.argument("canonical_id", type=int)
@pass_app
def link_cmd(app: App, kind: str, provider: str, provider_id: str, canonical_id: int) -> None:
    """Link PROVIDER's id PROVIDER_ID to canonical KIND CANONICAL_ID.

    For what entity resolution reported as ambiguous (the observation's reason
    names the command); PROVIDER is the feed kind, e.g. football-data. The
    next observation from that provider then resolves by id.
    """
    from store.crosswalk import Entity, relink

    entity = cast(Entity, kind)
    previous = in_db(app, lambda conn: relink(conn, entity, provider, provider_id, canonical_id))
    was = f" (was {kind} {previous})" if previous not in (None, canonical_id) else ""
    click.echo(f"{provider} {kind} {provider_id} -> {kind} {canonical_id}{was}")


@main.group(cls=Group)
def override() -> None:
    """Pin a match's score or status against every provider (audited, broadcast)."""


def _who() -> str:
    import getpass
    import os

    return os.environ.get("LIVESCORE_OPERATOR") or getpass.getuser()


def _show_changes(changes: list[Any]) -> None:
    if not changes:
        click.echo("nothing changed")
    for change in changes:
        click.echo(f"match {change.match_id} seq {change.seq} {change.type}")


@override.command("score")
@click.argument("match_id", type=int)
@click.argument("home", type=click.IntRange(0, 999))
@click.argument("away", type=click.IntRange(0, 999))
@click.option("--reason", required=True, help="why (kept in the audit trail)")
@pass_app
def override_score(app: App, match_id: int, home: int, away: int, reason: str) -> None:
    """Pin MATCH's score to HOME-AWAY."""
    from pipeline import overrides

    _show_changes(
        in_db(
            app,
            lambda conn: overrides.set_score(conn, match_id, home, away, who=_who(), reason=reason),
        )
    )


@override.command("status")
@click.argument("match_id", type=int)
@click.argument(
    "status",
    type=click.Choice([
        "scheduled", "live", "halftime", "extra_time", "penalties", "finished",
        "postponed", "suspended", "cancelled", "abandoned",
    ]),
)  # fmt: skip
@click.option("--reason", required=True, help="why (kept in the audit trail)")
@pass_app
def override_status(app: App, match_id: int, status: str, reason: str) -> None:
    """Pin MATCH's status to STATUS (any move: this is an explicit correction)."""
    from livescore.model import MatchStatus
    from pipeline import overrides

    _show_changes(
        in_db(
            app,
            lambda conn: overrides.set_status(
                conn, match_id, MatchStatus(status), who=_who(), reason=reason
            ),
        )
    )


@override.command("clear")
@click.argument("match_id", type=int)
@click.option("--reason", default=None, help="why (kept in the audit trail)")
@pass_app
def override_clear(app: App, match_id: int, reason: str | None) -> None:
    """Unpin MATCH: reconciliation takes over again on the next observation."""
    from pipeline import overrides

    _show_changes(
        in_db(app, lambda conn: overrides.clear(conn, match_id, who=_who(), reason=reason))
    )


@override.command("list")
@pass_app
def override_list(app: App) -> None:
    """List the active overrides."""
    from store.overrides import list_active

    rows = in_db(app, list_active)
    if not rows:
        click.echo("no active overrides")
    for row in rows:
        pinned = []
        if row["home_score"] is not None:
            pinned.append(f"score {row['home_score']}-{row['away_score']}")
        if row["status"]:
            pinned.append(f"status {row['status']}")
        click.echo(
            f"match {row['match_id']} {row['home']} v {row['away']}: {', '.join(pinned)} "
            f"by {row['who']} since {row['since'].isoformat()} ({row['reason']})"
        )


# -- relay: held matches -----------------------------------------------------------------


@main.group(cls=Group)
def relay() -> None:
    """Matches the relay holds because one of their changes could not be published."""


@relay.command("held")
@pass_app
def relay_held(app: App) -> None:
    """List held matches: the change that stopped each, and why."""
    from store.changes import held

    rows = in_db(app, held)
    if not rows:
        click.echo("no held matches: every change is being published")
    for row in rows:
        click.echo(
            f"match {row.match_id} held at seq {row.seq} since {row.held_at.isoformat()}: "
            f"{row.reason}"
        )


@relay.command("release")
@click.argument("match_id", type=int)
@click.option(
    "--skip",
    "skip_seq",
    type=int,
    default=None,
    help="mark this seq published without publishing it (edges fill the gap from the log)",
)
@pass_app
def relay_release(app: App, match_id: int, skip_seq: int | None) -> None:
    """Let the relay publish MATCH again (after the bad change was fixed or skipped)."""
    from store import changes
    from store.db import atomic

    async def go(conn: Any) -> tuple[bool, bool]:
        async with atomic(conn):
            skipped = False
            if skip_seq is not None:
                skipped = await changes.skip_unpublishable(conn, match_id, skip_seq)
                if not skipped:
                    raise click.ClickException(
                        f"match {match_id} has no unpublished change with seq {skip_seq}; "
                        "see `livescore relay held`"
                    )
            return await changes.release(conn, match_id), skipped

    released, skipped = in_db(app, go)
    if skipped:
        click.echo(f"match {match_id}: seq {skip_seq} skipped (never published)")
    click.echo(
        f"match {match_id} released: the relay publishes its changes again"
        if released
        else f"match {match_id} was not held"
    )


# -- edge: serve, apikey ------------------------------------------------------------------


@main.command("serve")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Port for HTTP and WebSocket clients.  [default: PORT or 8000]",
)
@click.option(
    "--host", default="0.0.0.0", show_default=True, help="Address to bind (127.0.0.1: local only)."
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker processes (each with its own pool, Redis client and caches).",
)
@pass_app
def serve(app: App, port: int | None, host: str, workers: int) -> None:
    """Run the edge: REST API (and WebSocket hub) until SIGINT/SIGTERM."""
    from edge.app import serve as serve_edge

    serve_edge(
        app.settings,
        app.endpoints,
        host=host,
        port=port or app.settings.port,
        workers=workers,
    )


@main.group(cls=Group)
def apikey() -> None:
    """API keys for writers (POST routes need 'Authorization: Bearer KEY')."""


@apikey.command("create")
@click.argument("name")
@pass_app
def apikey_create(app: App, name: str) -> None:
    """Make a key called NAME and print it (shown once; only its hash is stored)."""
    from store.apikeys import create_key

    plain = in_db(app, lambda conn: create_key(conn, name)).plain
    click.echo(plain)
    click.echo(f"API key {name!r} created; store it now, it is not shown again", err=True)


@apikey.command("revoke")
@click.argument("name")
@pass_app
def apikey_revoke(app: App, name: str) -> None:
    """Revoke the key called NAME (its requests get 403 from then on)."""
    from store.apikeys import revoke_key

    key = in_db(app, lambda conn: revoke_key(conn, name))
    when = key.revoked_at.isoformat() if key.revoked_at else "now"
    click.echo(f"API key {name!r} revoked at {when}")


# -- end of edge section ------------------------------------------------------------------


# -- demo ---------------------------------------------------------------------------------


@main.command("demo")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8000,
    show_default=True,
    help="port of the first edge node",
)
@click.option(
    "--second-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="port of the second edge node  [default: PORT+1]",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="address the edge nodes bind (0.0.0.0: reachable from other machines)",
)
@click.option(
    "--speed",
    type=click.FloatRange(0.1, 10_000),
    default=20.0,
    show_default=True,
    help="recorded seconds per wall second",
)
@click.option(
    "--fixture",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="recording to replay  [default: fixtures/premier-league-matchday]",
)
@click.option(
    "--database",
    default="livescore_demo",
    show_default=True,
    help="database the demo re-creates on every run (your other data is untouched)",
)
@click.option(
    "--prefix",
    default="livescore-demo",
    show_default=True,
    help="Redis prefix of the demo's processes",
)
@pass_app
def demo_cmd(
    app: App,
    port: int,
    second_port: int | None,
    host: str,
    speed: float,
    fixture: Path | None,
    database: str,
    prefix: str,
) -> None:
    """Everything at once: a fresh database (migrated, seeded), a worker, two edge
    nodes and a recorded matchday replayed as today's; prints the URLs. Ctrl-C stops."""
    import signal
    import time

    from pipeline.demo import (
        DEFAULT_FIXTURE,
        STOP_TIMEOUT,
        Demo,
        DemoConfig,
        prepare,
        replay_now,
    )

    if fixture is None and not DEFAULT_FIXTURE.is_dir():
        raise click.UsageError(
            f"no recording at {DEFAULT_FIXTURE} (an install without the source tree?); "
            "pass --fixture fixtures/NAME"
        )
    config = DemoConfig(
        host=host,
        ports=(port, second_port or port + 1),
        speed=speed,
        fixture=(fixture or DEFAULT_FIXTURE).resolve(),
        database=database,
        prefix=prefix,
    )
    # Ctrl-C (even when started with SIGINT ignored, as from a script's `&`) and
    # SIGTERM both end in the `finally` below, which stops the children in order.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    demo = Demo(app.settings, app.endpoints, config)
    demo.check_ports()
    demo.create_database()
    click.echo(f"database {database}: migrated, seeded {run(prepare(demo.database_url))} matches")
    try:
        click.echo("starting a worker and two edge nodes ...")
        demo.start(click.echo)
        click.echo("\nLiveScore demo is running (Ctrl-C stops it):")
        for line in demo.urls():
            click.echo(line)
        click.echo(f"  try it     {demo.cli_hint()}\n")
        finals = run(replay_now(demo, click.echo))
        click.echo("replay finished:")
        for line in finals:
            click.echo(line)
        click.echo("the nodes keep serving; Ctrl-C stops the demo")
        while True:
            time.sleep(1)
            demo.check_children()
    except KeyboardInterrupt:
        click.echo(f"\nstopping (up to {STOP_TIMEOUT:.0f}s: the worker finishes its jobs) ...")
    finally:
        stopped = demo.stop()
        if stopped:
            click.echo(f"stopped {', '.join(stopped)}")
        if app.settings.embedded:
            click.echo(
                "the embedded PostgreSQL/Redis keep running for the next command; "
                "`livescore db stop` stops them"
            )


# -- end of demo section ------------------------------------------------------------------


if __name__ == "__main__":  # pragma: no cover
    main()
