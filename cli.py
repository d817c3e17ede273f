"""The ``livescore`` command (click). Thin: every command parses its options,
calls one function of a layer, and prints the result. Domain errors become
one-line messages (exit 1); usage errors exit 2."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

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


@db.command("migrate")
@pass_app
def db_migrate(app: App) -> None:
    """Apply pending migrations (idempotent: a second run changes nothing)."""
    from store.db import connect
    from store.migrate import migrate

    async def go() -> list[str]:
        conn = await connect(app.endpoints.database_url)
        async with conn:
            return [f"{m.version:04d}_{m.name}" for m in await migrate(conn)]

    applied = run(go())
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
    from store.migrate import migrate
    from store.seed import seed

    async def go() -> int:
        conn = await connect(app.endpoints.database_url)
        async with conn:
            await migrate(conn)
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


if __name__ == "__main__":  # pragma: no cover
    main()
