"""``livescore webhooks``: endpoints that get every matching change as a signed POST."""

from __future__ import annotations

import os
from typing import Any

import click

from commands.app import App, Group, duration, in_db, pass_app, run

EVENTS_HELP = (
    "comma list of change types: score:update, match:status, match:update, commentary:new, "
    "commentary:update (or all)"
)


@click.group(cls=Group)
def webhooks() -> None:
    """Signed webhooks (Standard Webhooks): each matching change POSTed to an endpoint.

    `livescore worker` sends them, signing with the whsec_ secret it reads from
    the endpoint's --secret-env variable (set it in the worker's environment).
    """


@webhooks.command("add")
@click.argument("name")
@click.argument("url")
@click.option("--events", required=True, help=EVENTS_HELP)
@click.option("--matches", default="", help="only these match ids (comma list)")
@click.option("--competitions", default="", help="only matches of these competition ids")
@click.option(
    "--secret-env",
    required=True,
    help="environment variable of the worker holding the endpoint's whsec_... secret",
)
@pass_app
def webhooks_add(
    app: App, name: str, url: str, events: str, matches: str, competitions: str, secret_env: str
) -> None:
    """Add endpoint NAME: POST matching changes to URL from now on."""
    from livescore.errors import ConfigError
    from livescore.webhooks import (
        Endpoint,
        WebhookSecretError,
        check_endpoint,
        parse_events,
        parse_ids,
        secret_key,
    )
    from store.webhooks import add_endpoint

    try:
        endpoint = Endpoint(
            name=name,
            url=url.strip(),
            events=parse_events(events),
            secret_env=secret_env,
            match_ids=parse_ids(matches, "--matches"),
            competition_ids=parse_ids(competitions, "--competitions"),
        )
        check_endpoint(endpoint)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    added = in_db(app, lambda conn: add_endpoint(conn, endpoint))
    scope = (
        f"matches {','.join(map(str, added.match_ids))}"
        if added.match_ids
        else f"competitions {','.join(map(str, added.competition_ids))}"
        if added.competition_ids
        else "every match"
    )
    click.echo(f"added webhook {added.name} -> {added.url} ({', '.join(added.events)}; {scope})")
    try:
        secret_key(os.environ.get(secret_env), secret_env)
    except WebhookSecretError as exc:
        click.echo(f"note: in this shell {exc}", err=True)


def _state(endpoint: Any) -> str:
    if endpoint.enabled:
        return "enabled"
    return f"disabled ({endpoint.disabled_reason})" if endpoint.disabled_reason else "disabled"


@webhooks.command("list")
@pass_app
def webhooks_list(app: App) -> None:
    """List endpoints: state, events, scope, secret variable and delivery counts."""
    from store.webhooks import list_endpoints

    rows = in_db(app, list_endpoints)
    if not rows:
        click.echo("no webhooks configured; add one with `livescore webhooks add`")
    for row in rows:
        e = row.endpoint
        scope = (
            f" matches={','.join(map(str, e.match_ids))}"
            if e.match_ids
            else f" competitions={','.join(map(str, e.competition_ids))}"
            if e.competition_ids
            else ""
        )
        here = "set" if os.environ.get(e.secret_env) else "not set"
        click.echo(
            f"{e.name:<20} {_state(e)} {e.url} events={','.join(e.events)}{scope} "
            f"secret=${e.secret_env} ({here} in this shell) "
            f"pending={row.pending} delivered={row.delivered} failed={row.dead}"
        )


@webhooks.command("enable")
@click.argument("name")
@pass_app
def webhooks_enable(app: App, name: str) -> None:
    """Enable endpoint NAME (its pending deliveries go out, new changes are added)."""
    from store.webhooks import set_enabled

    in_db(app, lambda conn: set_enabled(conn, name, True))
    click.echo(f"enabled webhook {name}")


@webhooks.command("disable")
@click.argument("name")
@pass_app
def webhooks_disable(app: App, name: str) -> None:
    """Disable endpoint NAME: nothing is sent, and changes meanwhile are not added."""
    from store.webhooks import set_enabled

    in_db(app, lambda conn: set_enabled(conn, name, False, reason="disabled by an operator"))
    click.echo(f"disabled webhook {name} (pending deliveries wait; `enable` sends them)")


@webhooks.command("remove")
@click.argument("name")
@pass_app
def webhooks_remove(app: App, name: str) -> None:
    """Remove endpoint NAME and its deliveries."""
    from store.webhooks import remove_endpoint

    gone = in_db(app, lambda conn: remove_endpoint(conn, name))
    click.echo(f"removed webhook {name} and its {gone} deliveries")


@webhooks.command("test")
@click.argument("name")
@click.option(
    "--wait", "wait", default="30s", show_default=True, help="how long to wait for the answer"
)
@pass_app
def webhooks_test(app: App, name: str, wait: str) -> None:
    """Have the worker send one signed test message to NAME now, and print the answer."""
    import asyncio
    import time

    from commands.app import pipeline_context
    from pipeline.webhooks import test_delivery
    from store import webhooks as store

    seconds = duration(wait)

    async def go() -> store.Delivery | tuple[int, None]:
        async with pipeline_context(app) as pctx:
            async with pctx.pool.connection() as conn:
                endpoint = await store.get_endpoint(conn, name)
                if not endpoint.enabled:
                    raise click.ClickException(
                        f"webhook {name} is {_state(endpoint)}; "
                        f"`livescore webhooks enable {name}` first"
                    )
                msg_id, body = test_delivery(endpoint)
                delivery_id = await store.add_test_delivery(conn, endpoint.id, msg_id, body)
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                async with pctx.pool.connection() as conn:
                    current = await store.get_delivery(conn, delivery_id)
                if current.attempts > 0:
                    return current
                await asyncio.sleep(0.2)
            return delivery_id, None

    result = run(go())
    if isinstance(result, tuple):
        raise click.ClickException(
            f"test delivery {result[0]} was not sent within {wait}: is `livescore worker` running "
            "(on this database and LIVESCORE_REDIS_PREFIX)?"
        )
    if result.state == "delivered":
        click.echo(
            f"delivered test message {result.message_id} (delivery {result.id}): "
            f"HTTP {result.last_status}"
        )
        return
    raise click.ClickException(
        f"test message {result.message_id} (delivery {result.id}) failed: {result.last_error}"
    )


@webhooks.command("deliveries")
@click.argument("name")
@click.option("--failed", is_flag=True, help="only dead-lettered deliveries (all attempts failed)")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@pass_app
def webhooks_deliveries(app: App, name: str, failed: bool, limit: int) -> None:
    """NAME's deliveries, newest first: id, state, change, attempts, last answer."""
    from store.webhooks import list_deliveries

    rows = in_db(app, lambda conn: list_deliveries(conn, name, failed_only=failed, limit=limit))
    if not rows:
        click.echo("no failed deliveries" if failed else "no deliveries yet")
    for d in rows:
        what = f"match {d.match_id} seq {d.seq}" if d.match_id is not None else "test"
        if d.state == "delivered":
            state = f"delivered {d.delivered_at.isoformat() if d.delivered_at else ''}"
        elif d.state == "dead":
            state = f"FAILED (dead-lettered {d.dead_at.isoformat() if d.dead_at else ''})"
        elif d.attempts:
            state = f"retrying, next attempt {d.next_attempt_at.isoformat()}"
        else:
            state = "pending"
        answer = f" last: {d.last_status or '-'} {d.last_error or ''}".rstrip()
        click.echo(
            f"{d.id:>8} {d.type:<18} {what:<22} attempts={d.attempts} {state}"
            f"{answer if d.attempts else ''}"
        )


@webhooks.command("redeliver")
@click.argument("delivery_ids", type=int, nargs=-1, required=True)
@pass_app
def webhooks_redeliver(app: App, delivery_ids: tuple[int, ...]) -> None:
    """Send DELIVERY_ID again (same webhook-id and body, a fresh retry schedule)."""
    from store.db import atomic
    from store.webhooks import Delivery, redeliver

    async def go(conn: Any) -> list[Delivery]:
        async with atomic(conn):
            return [await redeliver(conn, delivery_id) for delivery_id in delivery_ids]

    for d in in_db(app, go):
        click.echo(f"delivery {d.id} ({d.message_id}) to {d.endpoint} queued again")
