"""``livescore standings``: a competition's table rules, and its table."""

from __future__ import annotations

from typing import Any

import click

from commands.app import App, Group, pass_app, pipeline_context, run


@click.group(cls=Group)
def standings() -> None:
    """League tables computed from our own results (see README "Standings")."""


def _describe(competition: dict[str, Any], rules: Any, own: bool) -> str:
    whose = "its own" if own else "the defaults"
    return (
        f"competition {competition['id']} {competition['name']}: win {rules.win}, "
        f"draw {rules.draw}, loss {rules.loss}, season starts in month "
        f"{rules.season_start_month} ({whose})"
    )


@standings.command("rules")
@click.argument("competition_id", metavar="COMPETITION", type=int)
@click.option("--win", type=click.IntRange(0, 100), help="points for a win")
@click.option("--draw", type=click.IntRange(0, 100), help="points for a draw")
@click.option("--loss", type=click.IntRange(-100, 100), help="points for a defeat")
@click.option(
    "--season-start-month",
    type=click.IntRange(1, 12),
    help="the month a season starts in (7: July, the default; 1 for calendar years)",
)
@click.option("--reset", is_flag=True, help="drop the competition's own rules (3/1/0, July)")
@pass_app
def rules_cmd(
    app: App,
    competition_id: int,
    win: int | None,
    draw: int | None,
    loss: int | None,
    season_start_month: int | None,
    reset: bool,
) -> None:
    """Show COMPETITION's points per result and season start; with an option, set them.

    Options not given keep their current value. A change is live at once:
    edges drop their cached tables and push the new one to the competition's
    subscribers."""
    import dataclasses

    from livescore.standings import rules_changed
    from store.standings import own_rules, reset_rules, rules_of, set_rules

    changes = {
        name: value
        for name, value in (
            ("win", win),
            ("draw", draw),
            ("loss", loss),
            ("season_start_month", season_start_month),
        )
        if value is not None
    }
    if reset and changes:
        raise click.UsageError("--reset sets the defaults: give it alone")

    async def go() -> tuple[str, bool]:
        async with pipeline_context(app) as pctx:
            async with pctx.pool.connection() as conn, conn.transaction():
                competition, current = await rules_of(conn, competition_id)
                changed = False
                if reset:
                    changed = await reset_rules(conn, competition_id)
                elif changes:
                    wanted = dataclasses.replace(current, **changes)
                    changed = wanted != current or await own_rules(conn, competition_id) is None
                    await set_rules(conn, competition_id, wanted)
                competition, current = await rules_of(conn, competition_id)
                own = await own_rules(conn, competition_id) is not None
            if changed:
                await pctx.redis.publish(pctx.keys.standings_channel, rules_changed(competition_id))
            return _describe(competition, current, own), changed

    line, changed = run(go())
    click.echo(line)
    if changed:
        click.echo("tables recomputed with these rules; subscribers get the new table")


def _table_lines(table: dict[str, Any]) -> list[str]:
    lines = [f"{'#':>3}  {'team':<28}{'P':>3}{'W':>4}{'D':>4}{'L':>4}{'GF':>5}{'GA':>5}"
             f"{'GD':>5}{'Pts':>5}  form"]  # fmt: skip
    for row in table["rows"]:
        mark = " *" if row["provisional"] else ""
        lines.append(
            f"{row['position']:>3}  {row['team']['name'][:27]:<28}{row['played']:>3}"
            f"{row['won']:>4}{row['drawn']:>4}{row['lost']:>4}{row['goalsFor']:>5}"
            f"{row['goalsAgainst']:>5}{row['goalDifference']:>+5}{row['points']:>5}  "
            f"{row['form']}{mark}"
        )
    return lines


@standings.command("show")
@click.argument("competition_id", metavar="COMPETITION", type=int)
@click.option("--season", type=click.IntRange(1900, 2200), help="the year it starts in")
@click.option("--final", is_flag=True, help="finished matches only (no live rows)")
@click.option("--json", "as_json", is_flag=True, help="the endpoint's data as JSON")
@pass_app
def show_cmd(app: App, competition_id: int, season: int | None, final: bool, as_json: bool) -> None:
    """Print COMPETITION's table(s), as GET /api/competitions/{id}/standings serves them."""
    import orjson

    from livescore import clock
    from store.standings import standings_input

    async def go() -> dict[str, Any]:
        async with pipeline_context(app) as pctx, pctx.pool.connection() as conn:
            found = await standings_input(conn, competition_id, season, clock.now())
        return found.document(live=not final)

    data = run(go())
    if as_json:
        click.echo(orjson.dumps(data).decode())
        return
    rules = data["rules"]
    click.echo(
        f"{data['competition']['name']} (competition {data['competition']['id']}), season "
        f"{data['season']}: win {rules['win']}, draw {rules['draw']}, loss {rules['loss']}"
        f"{'' if final else ', live matches as they stand (*)'}"
    )
    for table in data["tables"]:
        if table["group"] is not None:
            click.echo(table["group"])
        for line in _table_lines(table):
            click.echo(line)
        if not table["rows"]:
            click.echo("  (no matches this season)")
