"""The provider standings cross-check (``pipeline.standings_check``) against a
mocked football-data feed (respx): disagreements are found per team and column,
logged and kept in ``standings_checks``, an unknown team is named, an agreeing
table records an empty check, a failing feed is counted and our table is never
changed."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
import respx

from commands.status import gather, render
from livescore import clock
from livescore.config import Settings
from livescore.feeds import FeedConfig
from livescore.model import MatchPatch, MatchStatus
from livescore.runtime import Endpoints
from livescore.standings import season_of
from pipeline.context import PipelineContext
from pipeline.standings_check import check_all
from store import crosswalk
from store.db import Conn
from store.feeds import add_feed
from store.standings import recent_checks, standings_input
from store.writes import apply_change
from tests.factories import Factory

FD_BASE = "http://football-data.test"


def fd_row(team: int, name: str, played: int, w: int, d: int, lost: int, gf: int, ga: int,
           pts: int) -> dict[str, Any]:  # fmt: skip
    return {
        "position": 1, "team": {"id": team, "name": name}, "playedGames": played, "won": w,
        "draw": d, "lost": lost, "points": pts, "goalsFor": gf, "goalsAgainst": ga,
    }  # fmt: skip


def fd_standings(*rows: dict[str, Any]) -> str:
    season = season_of(clock.now())
    body = {"season": {"startDate": f"{season}-08-01"},
            "standings": [{"type": "TOTAL", "group": None, "table": list(rows)}]}  # fmt: skip
    return orjson.dumps(body).decode()


async def league(factory: Factory, conn: Conn) -> int:
    """Our table: Arsenal 2-0 Chelsea (finished), both crosswalked to football-data."""
    comp = await factory.competition("Premier League")
    arsenal, chelsea = await factory.team("Arsenal"), await factory.team("Chelsea")
    await crosswalk.link(conn, "competition", "football-data", "2021", comp, "Premier League")
    await crosswalk.link(conn, "team", "football-data", "57", arsenal, "Arsenal FC")
    await crosswalk.link(conn, "team", "football-data", "61", chelsea, "Chelsea FC")
    match = await factory.match(
        home=arsenal, away=chelsea, competition=comp,
        start_time=clock.now().replace(microsecond=0) - timedelta(hours=3),
    )  # fmt: skip
    await apply_change(conn, match["id"], MatchPatch(source="t", status=MatchStatus.LIVE))
    await apply_change(
        conn,
        match["id"],
        MatchPatch(source="t", status=MatchStatus.FINISHED, home_score=2, away_score=0),
    )
    return comp


async def test_disagreements_are_logged_kept_shown_by_status_and_ours_is_untouched(
    pctx: PipelineContext,
    conn: Conn,
    factory: Factory,
    caplog: pytest.LogCaptureFixture,
    settings: Settings,
    endpoints: Endpoints,
) -> None:
    comp = await league(factory, conn)
    await add_feed(conn, FeedConfig(name="fd", kind="football-data", base_url=FD_BASE))
    before = await standings_input(conn, comp, None, clock.now())
    theirs = fd_standings(
        fd_row(57, "Arsenal FC", 1, 1, 0, 0, 2, 0, 3),  # agrees
        fd_row(61, "Chelsea FC", 1, 0, 1, 0, 2, 2, 1),  # they have a 2-2 draw
        fd_row(99, "Luton Town", 0, 0, 0, 0, 0, 0, 0),  # a team we do not know
    )
    season = season_of(clock.now())
    with (
        caplog.at_level(logging.INFO, logger="livescore.pipeline.standings"),
        respx.mock(base_url=FD_BASE, assert_all_called=True) as mock,
    ):
        route = mock.get("/v4/competitions/2021/standings", params={"season": str(season)})
        route.mock(return_value=httpx.Response(200, text=theirs))
        result = await check_all(pctx)
    assert result == {"checked": 1, "disagreeing": 1, "failed": 0}
    (check,) = await recent_checks(conn)
    assert (check["competition_id"], check["feed"], check["season"]) == (comp, "fd", season)
    assert check["disagreements"] == [
        {"team": "Chelsea", "field": "drawn", "ours": 0, "theirs": 1},
        {"team": "Chelsea", "field": "lost", "ours": 1, "theirs": 0},
        {"team": "Chelsea", "field": "goalsFor", "ours": 0, "theirs": 2},
        {"team": "Chelsea", "field": "points", "ours": 0, "theirs": 1},
        {"team": "Luton Town", "field": "team", "ours": None, "theirs": "Luton Town"},
    ]
    assert any("standings.disagree" in r.getMessage() and "count=5" in r.getMessage()
               for r in caplog.records)  # fmt: skip
    assert await standings_input(conn, comp, None, clock.now()) == before
    # livescore status shows the last check (informational: not a problem)
    report = await gather(settings, endpoints)
    assert report.standings is not None
    (shown,) = report.standings
    assert (shown["competition"], shown["feed"], shown["disagreements"]) == (
        "Premier League", "fd", 5
    )  # fmt: skip
    assert "Premier League" in render(report) and "5 disagreement(s)" in render(report)
    assert not [p for p in report.problems if "standings" in p.code]


async def test_an_agreeing_table_records_an_empty_check_and_a_failing_feed_is_counted(
    pctx: PipelineContext, conn: Conn, factory: Factory
) -> None:
    await league(factory, conn)
    await add_feed(conn, FeedConfig(name="fd", kind="football-data", base_url=FD_BASE))
    agreeing = fd_standings(
        fd_row(57, "Arsenal FC", 1, 1, 0, 0, 2, 0, 3),
        fd_row(61, "Chelsea FC", 1, 0, 0, 1, 0, 2, 0),
    )
    with respx.mock(base_url=FD_BASE, assert_all_called=True) as mock:
        mock.get("/v4/competitions/2021/standings").mock(
            side_effect=[httpx.Response(200, text=agreeing), httpx.Response(403, text="{}")]
        )
        assert await check_all(pctx) == {"checked": 1, "disagreeing": 0, "failed": 0}
        (check,) = await recent_checks(conn)
        assert check["disagreements"] == []
        assert await check_all(pctx) == {"checked": 0, "disagreeing": 0, "failed": 1}
