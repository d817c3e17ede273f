"""Replaying a recording as today's matchday (``replay --now``, the demo)."""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import psycopg

from livescore import clock
from pipeline.timeshift import first_kickoff, offset_to_now, paced, shift_observations
from providers.fixture import FixtureFeed
from providers.registry import adapter_for
from store.admin import create_database, drop_database
from tests.conftest import Services

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
LIVESCORE = str(Path(sys.executable).with_name("livescore"))


def test_offset_puts_the_first_kickoff_lead_after_now_on_a_whole_minute() -> None:
    recording = FixtureFeed(FIXTURES / "premier-league-matchday")
    kickoff = first_kickoff(recording)
    assert kickoff is not None and kickoff.isoformat() == "2022-09-04T13:00:00+00:00"
    now = clock.now()
    shifted = kickoff + offset_to_now(recording, now, timedelta(minutes=2))
    assert now + timedelta(minutes=2) <= shifted < now + timedelta(minutes=3)
    assert shifted.second == 0 and shifted.microsecond == 0


def test_observation_times_move_by_the_offset() -> None:
    recording = FixtureFeed(FIXTURES / "premier-league-matchday")
    response = recording.responses[0]
    batch = adapter_for(recording.feed_configs()[response.feed]).parse_report(response)
    delta = timedelta(days=3, minutes=7)
    moved = shift_observations(batch.observations, delta)
    for before, after in zip(batch.observations, moved, strict=True):
        assert after.start_time == before.start_time + delta
        assert after.provider_match_id == before.provider_match_id
        if before.provider_updated_at is not None:
            assert after.provider_updated_at == before.provider_updated_at + delta


async def test_paced_replays_the_past_at_once_and_the_rest_on_the_wall_clock() -> None:
    recording = FixtureFeed(FIXTURES / "premier-league-matchday")
    responses = recording.responses[:6]
    now = responses[3].fetched_at  # shift 0: the first four lie in the past
    started = time.monotonic()
    seen = []
    async for response in paced(responses, speed=1e6, shift=timedelta(0), now=now):
        seen.append((response, time.monotonic() - started))
    assert [r for r, _ in seen] == list(responses)
    # at a millionfold speed nothing really waits: the last two lie 15 and 30 minutes
    # ahead, 0.9 ms and 1.8 ms away; pacing on the wall clock at speed 1 would take
    # 15 minutes, so a bound of seconds tells them apart under any load
    assert all(at < 5.0 for _, at in seen), seen


def test_replay_now_makes_the_matchday_today(services: Services) -> None:
    database = f"livescore_shift_test_{secrets.token_hex(3)}"
    url = create_database(services.database_url, database)
    try:
        started = clock.now()
        result = subprocess.run(
            [LIVESCORE, "replay", str(FIXTURES / "cup-final-shootout"), "--speed", "0", "--now"],
            env=services.env(DATABASE_URL=url, LIVESCORE_REDIS_PREFIX=f"{services.prefix}.shift"),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        assert "recorded times shifted by" in result.stdout
        assert "Sevilla" in result.stdout and "[finished]" in result.stdout
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT min(start_time) AS kickoff FROM matches").fetchone()
        assert row is not None
        kickoff = row[0]
        assert started + timedelta(minutes=2) <= kickoff <= clock.now() + timedelta(minutes=3)
    finally:
        drop_database(services.database_url, database)
