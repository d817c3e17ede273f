"""`livescore db seed` loads a realistic matchday once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from livescore.clock import now as clock_now
from livescore.config import load_settings
from livescore.model import IN_PLAY_STATUSES, MatchStatus
from pipeline import automation
from pipeline.demo import DEFAULT_FIXTURE
from providers.errors import PayloadError
from providers.fixture import FixtureFeed
from providers.registry import adapter_for
from store.changes import changes_since
from store.db import Conn
from store.matches import MatchFilter, list_matches
from store.seed import SEED_MATCHES, TEAMS, SeedMatch, seed


async def test_seed_creates_a_day_in_several_states_and_is_idempotent(conn: Conn) -> None:
    assert await seed(conn) == len(SEED_MATCHES)
    assert await seed(conn) == 0
    matches, _ = await list_matches(conn, MatchFilter(), limit=100)
    assert len(matches) == len(SEED_MATCHES)
    statuses = {m["status"] for m in matches}
    assert {"finished", "live", "halftime", "postponed", "scheduled"} <= statuses
    finished = next(m for m in matches if m["status"] == "finished")
    assert (finished["homeScore"], finished["awayScore"]) == (2, 1)
    assert finished["breakdown"]["halfTime"] == {"home": 1, "away": 0}
    # seeded state went through the write path: seq matches the change log
    log = await changes_since(conn, finished["id"], 0)
    assert [c.seq for c in log] == list(range(1, finished["seq"] + 1))


# -- nothing frozen, nobody twice: the rules the demo relies on --------------------------------

SEEDED_AT = datetime(2026, 11, 29, 15, 0, 30, tzinfo=UTC)
DURATION = timedelta(seconds=load_settings({}).match_duration_s)  # the default the demo runs
IN_PLAY = [spec for spec in SEED_MATCHES if spec.status in IN_PLAY_STATUSES]


def test_the_seed_has_matches_in_play() -> None:
    assert {spec.status for spec in IN_PLAY} == {MatchStatus.LIVE, MatchStatus.HALFTIME}


@pytest.mark.parametrize("spec", IN_PLAY, ids=lambda spec: spec.key)
def test_a_seeded_match_in_play_is_where_automation_runs_it_on_from(spec: SeedMatch) -> None:
    """No feed covers a seeded match: it must be seeded where the automation's
    timeline is at seeding time, with a next transition ahead, so it advances
    (a running clock ticks, half time ends, full time comes) instead of freezing."""
    kickoff = (SEEDED_AT + spec.kickoff).replace(second=0, microsecond=0)
    phases = [p for p in automation.timeline(kickoff, None, DURATION) if p.at <= SEEDED_AT]
    assert (phases[-1].status, phases[-1].period) == (spec.status, spec.period)
    assert (
        automation.transition(spec.status, kickoff, None, DURATION, SEEDED_AT, spec.period) is None
    )
    assert automation.due_at(spec.status, kickoff, None, DURATION, spec.period) is not None
    if spec.status is MatchStatus.LIVE:
        expected = automation.clock_at(spec.status, kickoff, None, DURATION, SEEDED_AT)
        assert (spec.minute, spec.period) == (expected.minute, expected.period)


def test_no_team_is_in_two_seeded_matches_in_play() -> None:
    teams = [(spec.competition, side) for spec in IN_PLAY for side in (spec.home, spec.away)]
    assert len(teams) == len(set(teams))


def test_no_seeded_team_plays_in_the_demo_recording() -> None:
    """The demo replays its recording live next to the seed: a team in both would
    be live in two matches at once."""
    recording = FixtureFeed(DEFAULT_FIXTURE)
    adapters = {name: adapter_for(config) for name, config in recording.feed_configs().items()}
    recorded: set[str] = set()
    for response in recording.responses:
        try:
            batch = adapters[response.feed].parse_report(response).observations
        except PayloadError:
            continue
        for obs in batch:
            for team in (obs.home, obs.away):
                recorded |= {team.name, team.short_name or team.name}
    assert {"Manchester United FC", "Arsenal FC"} <= recorded  # the recording was read
    seeded = {
        name for teams in TEAMS.values() for full, short, _ in teams for name in (full, short)
    }
    assert not seeded & recorded


async def test_a_seeded_live_clock_runs_from_where_the_seed_put_it(conn: Conn) -> None:
    await seed(conn)
    matches, _ = await list_matches(conn, MatchFilter(statuses=(MatchStatus.LIVE,)), limit=10)
    (live,) = matches
    clock = live["clock"]
    assert (clock["minute"], clock["period"], clock["running"]) == (58, "2H", True)
    started = datetime.fromisoformat(clock["periodStartedAt"])
    assert abs(clock_now() - timedelta(minutes=13) - started) < timedelta(minutes=1)
    (halftime,), _ = await list_matches(
        conn, MatchFilter(statuses=(MatchStatus.HALFTIME,)), limit=10
    )
    assert halftime["clock"]["running"] is False
