"""``livescore providers``: configure provider feeds (stored in Postgres)."""

from __future__ import annotations

from typing import Any

import click

from commands.app import App, Group, duration, in_db, pass_app, pipeline_context, run

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


@click.group(cls=Group)
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
        poll_live_s=duration(poll_live),
        poll_idle_s=duration(poll_idle),
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


@providers.command("remove")
@click.argument("name")
@pass_app
def providers_remove(app: App, name: str) -> None:
    """Remove feed NAME (workers stop polling it; its observations and crosswalk stay)."""
    from store.feeds import remove_feed

    in_db(app, lambda conn: remove_feed(conn, name))
    click.echo(f"removed feed {name} (its observations and crosswalk entries are kept)")


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
