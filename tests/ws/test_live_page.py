"""The live page in a real headless Chromium: it lists today's matches, shows a
score changed through the CLI as it happens (on a scheduled match too),
resumes after a dropped socket without missing the change made meanwhile, and
ticks a running clock between reports. Saves a screenshot to
tests/artifacts/live-page.png."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from livescore import clock
from livescore.keys import Keys
from livescore.model import Clock, MatchPatch, MatchStatus, Period
from pipeline.relay import Relay
from store.db import Conn
from store.writes import apply_change
from tests.conftest import Services
from tests.factories import Factory
from tests.ws.browser import Browser, chromium_or_skip
from tests.ws.conftest import EdgeFactory

ARTIFACT = Path(__file__).resolve().parents[1] / "artifacts" / "live-page.png"
LIVESCORE = str(Path(sys.executable).with_name("livescore"))


def _today_at(hours: float) -> datetime:
    """A time today (UTC), ``hours`` from now but never on another day."""
    now = clock.now()
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    when = now + timedelta(hours=hours)
    return min(max(when, start + timedelta(minutes=1)), start + timedelta(hours=23, minutes=59))


def _score_of(match_id: int) -> str:
    return f"document.querySelector('[data-match-id=\"{match_id}\"]')?.dataset.score"


def _row(match_id: int) -> str:
    return f"document.querySelector('[data-match-id=\"{match_id}\"]')"


def _standing(team_id: int) -> str:
    """The team's row in the competition's table next to the matches."""
    return f"document.querySelector('.standings tr[data-team-id=\"{team_id}\"]')"


@pytest.mark.slow
async def test_live_page_shows_scores_as_they_change(
    edges: EdgeFactory,
    relay: Relay,
    factory: Factory,
    conn: Conn,
    services: Services,
    keys: Keys,
    tmp_path: Path,
) -> None:
    binary = chromium_or_skip()
    (node,) = edges(1)
    league = await factory.competition("Browser Test League")
    live = await factory.match(
        home="Northbridge Rovers",
        away="Southport Athletic",
        competition=league,
        start_time=_today_at(-0.5).replace(microsecond=0),
        status=MatchStatus.LIVE,
        home_score=1,
        away_score=0,
    )
    await apply_change(
        conn, live["id"], MatchPatch(source="test", clock=Clock(34, None, Period.FIRST_HALF))
    )
    other = await factory.match(
        home="Eastfield United",
        away="Westbay Wanderers",
        competition=league,
        start_time=_today_at(2).replace(second=0, microsecond=0),
    )
    # a clock reported 20 s ago at 89': the page must reach 90' by itself
    ticking = await factory.match(
        home="Hillcrest Town",
        away="Lowmoor City",
        competition=league,
        start_time=_today_at(-1.5).replace(microsecond=0),
        status=MatchStatus.LIVE,
    )
    reported_at = clock.now() - timedelta(seconds=20)
    await apply_change(
        conn,
        ticking["id"],
        MatchPatch(source="test", clock=Clock(89, None, Period.SECOND_HALF)),
        at=reported_at,
    )
    browser = await Browser(binary, tmp_path / "chromium").open()
    try:
        await browser.navigate(f"{node.url}/")
        await browser.wait_for(f"{_score_of(live['id'])} === '1-0'")
        await browser.wait_for("document.getElementById('conn').className === 'live'")
        before = await browser.wait_for(
            f"{_row(ticking['id'])}?.querySelector('.clock').textContent"
        )
        if clock.now() < reported_at + timedelta(seconds=55):
            assert before == "89'"
        assert (
            await browser.wait_for(
                f"document.querySelector('[data-match-id=\"{other['id']}\"]')?.dataset.status"
            )
            == "scheduled"
        )

        # the page drops its socket; a goal goes in meanwhile; it resumes with since
        await browser.evaluate("ws.close()")
        await apply_change(conn, live["id"], MatchPatch(source="test", home_score=1, away_score=1))
        await browser.wait_for(f"{_score_of(live['id'])} === '1-1'")
        # the table next to the matches follows: 1-1 as it stands is a point
        northbridge = live["homeTeam"]["id"]
        await browser.wait_for(f"{_standing(northbridge)}?.dataset.points === '1'")

        # an operator pins the score through the CLI: it appears without a reload
        env = services.env(DATABASE_URL=services.database_url, LIVESCORE_REDIS_PREFIX=keys.prefix)
        for match, home, away in ((live, 2, 1), (other, 2, 2)):
            result = await asyncio.to_thread(
                subprocess.run,
                [LIVESCORE, "override", "score", str(match["id"]), str(home), str(away),
                 "--reason", "browser test"],
                env=env, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert result.returncode == 0, result.stderr
        await browser.wait_for(f"{_score_of(live['id'])} === '2-1'")
        # pushed (standings:update, no reload): three points, top, provisional
        await browser.wait_for(f"{_standing(northbridge)}?.dataset.points === '3'")
        assert await browser.evaluate(f"{_standing(northbridge)}.dataset.position") == "1"
        assert await browser.evaluate(f"{_standing(northbridge)}.classList.contains('provisional')")
        text = await browser.evaluate(f"{_row(live['id'])}.innerText")
        # 34' when reported, ticking on since (a minute passes on a slow machine)
        assert "Northbridge Rovers" in text and "2 - 1" in text and re.search(r"3[4-9]'", text)
        # an override on a scheduled match shows: its score (no "vs") and the marker
        await browser.wait_for(
            f"{_row(other['id'])}.querySelector('.score').textContent === '2 - 2'"
        )
        assert await browser.evaluate(f"{_row(other['id'])}.dataset.override") == "yes"
        assert await browser.evaluate(f"{_row(other['id'])}.dataset.status") == "scheduled"

        # the running clock ticks from 89' to 90' with no change sent (seq stays)
        seq = await browser.evaluate(f"{_row(ticking['id'])}.dataset.seq")
        await browser.wait_for(
            f"{_row(ticking['id'])}.querySelector('.clock').textContent === '90\\''",
            within=90,
        )
        assert clock.now() >= reported_at + timedelta(minutes=1) - timedelta(seconds=2)
        assert await browser.evaluate(f"{_row(ticking['id'])}.dataset.seq") == seq
        assert "Browser Test League" in await browser.evaluate("document.body.textContent")
        assert "as it stands" in await browser.evaluate(
            "document.querySelector('.standings').textContent"
        )
        await asyncio.sleep(1.5)  # let the score flash fade before the picture
        await browser.screenshot(ARTIFACT)
    finally:
        await browser.close()
    assert ARTIFACT.stat().st_size > 10_000
