"""Edge commands: ``serve`` and ``apikey``."""

from __future__ import annotations

import click

from commands.app import App, Group, in_db, pass_app


@click.command("serve")
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


@click.group(cls=Group)
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
