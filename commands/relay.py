"""``livescore relay``: matches the outbox relay holds, and letting them go."""

from __future__ import annotations

from typing import Any

import click

from commands.app import App, Group, in_db, pass_app


@click.group(cls=Group)
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
