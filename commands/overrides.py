"""``livescore override``: pin a match's score or status (audited, broadcast)."""

from __future__ import annotations

from typing import Any

import click

from commands.app import App, Group, in_db, pass_app


@click.group(cls=Group)
def override() -> None:
    """Pin a match's score or status against every provider (audited, broadcast)."""


def _who() -> str:
    import getpass
    import os

    return os.environ.get("LIVESCORE_OPERATOR") or getpass.getuser()


def _show_changes(changes: list[Any]) -> None:
    if not changes:
        click.echo("nothing changed")
    for change in changes:
        click.echo(f"match {change.match_id} seq {change.seq} {change.type}")


@override.command("score")
@click.argument("match_id", type=int)
@click.argument("home", type=click.IntRange(0, 999))
@click.argument("away", type=click.IntRange(0, 999))
@click.option("--reason", required=True, help="why (kept in the audit trail)")
@pass_app
def override_score(app: App, match_id: int, home: int, away: int, reason: str) -> None:
    """Pin MATCH's score to HOME-AWAY."""
    from pipeline import overrides

    _show_changes(
        in_db(
            app,
            lambda conn: overrides.set_score(conn, match_id, home, away, who=_who(), reason=reason),
        )
    )


@override.command("status")
@click.argument("match_id", type=int)
@click.argument(
    "status",
    type=click.Choice([
        "scheduled", "live", "halftime", "extra_time", "penalties", "finished",
        "postponed", "suspended", "cancelled", "abandoned",
    ]),
)  # fmt: skip
@click.option("--reason", required=True, help="why (kept in the audit trail)")
@pass_app
def override_status(app: App, match_id: int, status: str, reason: str) -> None:
    """Pin MATCH's status to STATUS (any move: this is an explicit correction)."""
    from livescore.model import MatchStatus
    from pipeline import overrides

    _show_changes(
        in_db(
            app,
            lambda conn: overrides.set_status(
                conn, match_id, MatchStatus(status), who=_who(), reason=reason
            ),
        )
    )


@override.command("clear")
@click.argument("match_id", type=int)
@click.option("--reason", default=None, help="why (kept in the audit trail)")
@pass_app
def override_clear(app: App, match_id: int, reason: str | None) -> None:
    """Unpin MATCH: reconciliation takes over again on the next observation."""
    from pipeline import overrides

    _show_changes(
        in_db(app, lambda conn: overrides.clear(conn, match_id, who=_who(), reason=reason))
    )


@override.command("list")
@pass_app
def override_list(app: App) -> None:
    """List the active overrides."""
    from store.overrides import list_active

    rows = in_db(app, list_active)
    if not rows:
        click.echo("no active overrides")
    for row in rows:
        pinned = []
        if row["home_score"] is not None:
            pinned.append(f"score {row['home_score']}-{row['away_score']}")
        if row["status"]:
            pinned.append(f"status {row['status']}")
        click.echo(
            f"match {row['match_id']} {row['home']} v {row['away']}: {', '.join(pinned)} "
            f"by {row['who']} since {row['since'].isoformat()} ({row['reason']})"
        )
