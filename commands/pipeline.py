"""Pipeline commands: ``worker``, ``ingest``, ``record``, ``replay`` and ``link``."""

from __future__ import annotations

from typing import Any, cast

import click

from commands.app import App, duration, in_db, migrate_db, pass_app, pipeline_context, run
from livescore.errors import LiveScoreError


@click.command("worker")
@pass_app
def worker_cmd(app: App) -> None:
    """Run a SAQ worker (polling, reconciliation, automation) and the outbox relay."""
    from pipeline.worker import run_worker

    async def go() -> None:
        await migrate_db(app)
        await run_worker(app.settings, app.endpoints)

    click.echo(f"worker on queue {app.settings.redis_prefix}:jobs (Ctrl-C stops)")
    run(go())


@click.command("ingest")
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


@click.command("record")
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
            return await record(pctx, feed_name, out, every=duration(every), count=count,
                                echo=click.echo)  # fmt: skip

    saved = run(go())
    click.echo(f"recorded {saved} responses into {out}")


@click.command("replay")
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


@click.command("link")
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
