"""``livescore db``: schema migrations, seed data and the embedded servers."""

from __future__ import annotations

import click

from commands.app import App, Group, migrate_db, pass_app, run
from livescore import embedded


@click.group(cls=Group)
def db() -> None:
    """Schema migrations, seed data and the embedded servers."""


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
