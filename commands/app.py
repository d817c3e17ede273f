"""What the commands share: the per-invocation ``App``, the ``Group`` that turns
domain errors into one-line messages, and helpers to run a coroutine, on a
migrated database or pipeline context."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import click

from livescore import logs
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


def duration(text: str) -> float:
    """'15s', '10m', '1h' or plain seconds -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600}
    text = text.strip().lower()
    try:
        if text and text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a duration like 15s, 10m or 1h") from None


async def migrate_db(app: App) -> list[str]:
    """Apply pending migrations on one short connection; the names applied."""
    from store.db import connect
    from store.migrate import migrate

    conn = await connect(app.endpoints.database_url)
    async with conn:
        return [f"{m.version:04d}_{m.name}" for m in await migrate(conn)]


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
