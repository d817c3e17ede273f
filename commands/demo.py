"""``livescore demo``: the whole system at once on a fresh database."""

from __future__ import annotations

from pathlib import Path

import click

from commands.app import App, pass_app, run


@click.command("demo")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8000,
    show_default=True,
    envvar="PORT",
    show_envvar=True,
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
