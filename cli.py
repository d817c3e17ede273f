"""The ``livescore`` command (click). Thin: every command parses its options,
calls one function of a layer, and prints the result. Domain errors become
one-line messages (exit 1); usage errors exit 2.

This module is the entry point and holds the root group; the command families
live in ``commands/`` (one module each) and share ``commands.app``."""

from __future__ import annotations

import click

from commands import (
    db,
    demo,
    edge,
    overrides,
    pipeline,
    providers,
    relay,
    standings,
    status,
    webhooks,
)
from commands.app import App, Group


@click.group(cls=Group)
@click.version_option(package_name="livescore")
@click.pass_context
def main(ctx: click.Context) -> None:
    """LiveScore: real-time sports scores from provider feeds to REST and WebSocket clients.

    With DATABASE_URL / REDIS_URL unset, commands use a private PostgreSQL and
    Redis started from pip-installed wheels (data under LIVESCORE_DATA_DIR).
    """
    ctx.obj = App()


main.add_command(db.db)
main.add_command(pipeline.worker_cmd)
main.add_command(providers.providers)
main.add_command(pipeline.ingest_cmd)
main.add_command(pipeline.record_cmd)
main.add_command(pipeline.replay_cmd)
main.add_command(pipeline.link_cmd)
main.add_command(overrides.override)
main.add_command(relay.relay)
main.add_command(webhooks.webhooks)
main.add_command(edge.serve)
main.add_command(edge.apikey)
main.add_command(demo.demo_cmd)
main.add_command(status.status_cmd)
main.add_command(standings.standings)


if __name__ == "__main__":  # pragma: no cover
    main()
