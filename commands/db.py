"""``livescore db``: schema migrations, seed data and the embedded servers."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import click
import psycopg

from commands.app import App, Group, migrate_db, pass_app, run
from livescore import embedded

#: ``livescore demo``'s default database (commands/demo.py --database)
DEMO_DATABASE = "livescore_demo"


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


def _embedded_urls(data_dir: Path) -> dict[str, str]:
    """The URLs the embedded servers had when last started (running or not)."""
    try:
        state = json.loads((data_dir.resolve() / embedded.STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(state, dict):
        return {}
    urls = {"postgres": state.get("database_url"), "redis": state.get("redis_url")}
    return {name: url for name, url in urls.items() if isinstance(url, str) and url}


def _same_server(name: str, url: str, embedded_url: str) -> bool:
    """Does ``url`` point at the server ``embedded_url`` names (whatever the database)?"""
    if name == "postgres":
        from psycopg.conninfo import conninfo_to_dict

        try:
            a, b = conninfo_to_dict(url), conninfo_to_dict(embedded_url)
        except psycopg.Error:
            return False
        return (a.get("host"), str(a.get("port") or 5432)) == (
            b.get("host"),
            str(b.get("port") or 5432),
        )
    a_url, b_url = urlsplit(url), urlsplit(embedded_url)
    return (a_url.hostname, a_url.port) == (b_url.hostname, b_url.port)


def _database_name(url: str) -> str:
    from psycopg.conninfo import conninfo_to_dict

    try:
        return str(conninfo_to_dict(url).get("dbname") or "postgres")
    except psycopg.Error:
        return "?"


@db.command("status")
@pass_app
def db_status(app: App) -> None:
    """Say what runs where: embedded servers or configured URLs, and migrations."""
    from store.admin import database_exists
    from store.db import connect, redact
    from store.migrate import applied_versions, load_migrations

    settings = app.settings
    statuses = {s.name: s for s in embedded.status(settings.data_dir)}
    known = _embedded_urls(settings.data_dir)
    configured = {"postgres": settings.database_url, "redis": settings.redis_url}
    for name in ("postgres", "redis"):
        server = statuses[name]
        url = configured[name]
        if not url:
            click.echo(f"{server.describe()} (embedded)")
        elif name in known and _same_server(name, url, known[name]):
            # e.g. the demo's try-it environment: the URL names the embedded server
            state = "running" if server.running else "stopped"
            shown = redact(url) if name == "postgres" else url
            click.echo(f"{name}: embedded ({state}) at {shown}; data in {server.data}")
        else:
            click.echo(f"{name}: external at {redact(url) if name == 'postgres' else url}")
    url = settings.database_url or statuses["postgres"].url or ""
    pg_stopped = not statuses["postgres"].running and "postgres" in known
    if settings.database_url and pg_stopped and _same_server("postgres", url, known["postgres"]):
        url = ""
    if not url:
        click.echo(
            "migrations: unknown (the embedded postgres is stopped; "
            "`livescore db migrate` with DATABASE_URL unset starts it)"
        )
        return

    database = _database_name(url)

    async def go() -> tuple[list[int], bool]:
        conn = await connect(url)
        async with conn:
            return await applied_versions(conn), await database_exists(conn, DEMO_DATABASE)

    done, demo_exists = run(go())
    total = len(load_migrations())
    click.echo(f"migrations: {len(done)} of {total} applied in database {database}")
    if demo_exists and database != DEMO_DATABASE:
        click.echo(
            f"  (`livescore demo` keeps its own database, {DEMO_DATABASE}: run this with the "
            "demo's try-it environment to see it)"
        )


@db.command("stop")
@pass_app
def db_stop(app: App) -> None:
    """Stop the embedded PostgreSQL and Redis (their data is kept)."""
    stopped = embedded.stop(app.settings.data_dir)
    click.echo(f"stopped {', '.join(stopped)}" if stopped else "no embedded server was running")
