"""The provider standings cross-check (issue 16 part 4): a low-cadence SAQ cron job.

Every ``CHECK_CRON`` (30 min), for each enabled feed whose kind offers standings
(football-data, API-Football: ``providers.standings``) and each competition that
feed has shown us (``competition_crosswalk``), at most ``MAX_PER_FEED`` of them:
ask the feed for the competition's table of our current season, map its teams
through ``team_crosswalk``, and compare it with OUR table of finished matches
(``livescore.standings.compare``). Disagreements are logged
(``standings.disagree``, a warning naming the first few) and kept as the last
check per competition, feed and season (``standings_checks``, shown by
``livescore status``); our table is never changed by it. The request goes
through the feed's ``FeedClient``, so it spends the feed's request budget.
"""

from __future__ import annotations

import logging
from typing import Any

from saq.types import Context

from livescore import clock
from livescore.logs import kv
from livescore.standings import TheirRow, compare, compute
from pipeline.context import PipelineContext
from pipeline.jobs import pipeline
from providers.errors import ProviderError
from providers.standings import STANDINGS_KINDS, parse_standings, standings_request
from store.feeds import list_feeds
from store.standings import (
    crosswalked_competitions,
    record_check,
    standings_input,
    teams_of_provider,
)

log = logging.getLogger("livescore.pipeline.standings")

#: When the cross-check runs (SAQ cron, UTC).
CHECK_CRON = "*/30 * * * *"
#: Competitions checked per feed and run (each costs one request of its budget).
MAX_PER_FEED = 10


async def standings_check(ctx: Context) -> dict[str, Any]:
    """SAQ job: cross-check every eligible competition once."""
    return await check_all(pipeline(ctx))


async def check_all(pctx: PipelineContext) -> dict[str, Any]:
    async with pctx.pool.connection() as conn:
        feeds = [f for f in await list_feeds(conn, enabled_only=True) if f.kind in STANDINGS_KINDS]
    checked = failed = disagreeing = 0
    for feed in feeds:
        async with pctx.pool.connection() as conn:
            competitions = await crosswalked_competitions(conn, feed.kind)
        for provider_id, competition_id in competitions[:MAX_PER_FEED]:
            try:
                found = await check_one(pctx, feed.name, provider_id, competition_id)
            except ProviderError as exc:
                failed += 1
                log.warning(
                    kv(
                        "standings.check_failed",
                        feed=feed.name,
                        competition=competition_id,
                        error=exc,
                        hint="the next run retries; our table is unaffected",
                    )
                )
                continue
            checked += 1
            disagreeing += bool(found)
    return {"checked": checked, "disagreeing": disagreeing, "failed": failed}


async def check_one(
    pctx: PipelineContext, feed_name: str, provider_id: str, competition_id: int
) -> list[dict[str, Any]]:
    """Cross-check one competition against one feed; the disagreements found."""
    async with pctx.pool.connection() as conn:
        feed = next(f for f in await list_feeds(conn) if f.name == feed_name)
        ours = await standings_input(conn, competition_id, None, clock.now())
    client = pctx.client_for(feed)
    response = await client.send(standings_request(feed.kind, provider_id, ours.season))
    theirs = parse_standings(feed.kind, response.json())
    async with pctx.pool.connection() as conn:
        teams = await teams_of_provider(conn, feed.kind, [r.team_id for r in theirs.rows])
        rows = [
            TheirRow(
                teams.get(r.team_id),
                r.team_name,
                r.played,
                r.won,
                r.drawn,
                r.lost,
                r.goals_for,
                r.goals_against,
                r.points,
            )
            for r in theirs.rows
        ]
        found = compare(compute(ours.results, ours.rules, live=False), rows)
        await record_check(conn, competition_id, feed.name, ours.season, found)
    fields = {"feed": feed.name, "competition": competition_id, "season": ours.season}
    if found:
        log.warning(kv("standings.disagree", **fields, count=len(found), first=found[:3]))
    else:
        log.info(kv("standings.agree", **fields, teams=len(rows)))
    return found
