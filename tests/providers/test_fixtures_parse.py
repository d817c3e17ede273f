"""The shipped recordings in fixtures/: every response parses with its feed's adapter,
the manifests' final expectations hold, and together they cover what the issue asks."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from livescore.model import EventType, MatchObservation, MatchStatus
from providers.fixture import FixtureFeed
from providers.recording import iter_responses
from providers.registry import adapter_for

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
RECORDINGS = sorted(p.parent.name for p in FIXTURES.glob("*/manifest.json"))


def parsed(name: str) -> Iterator[tuple[str, str, MatchObservation]]:
    """(feed, purpose, observation) for every observation of every response, in time order."""
    feed = FixtureFeed(FIXTURES / name)
    configs = feed.feed_configs()
    for response in feed.responses:
        for observation in adapter_for(configs[response.feed]).parse(response):
            yield response.feed, response.purpose, observation


def test_at_least_three_recordings_ship() -> None:
    assert len(RECORDINGS) >= 3, RECORDINGS


@pytest.mark.parametrize("name", RECORDINGS)
def test_recording_is_well_formed(name: str) -> None:
    feed = FixtureFeed(FIXTURES / name)
    assert feed.manifest.name == name
    assert 30 <= len(feed.responses) <= 400
    size = sum(f.stat().st_size for f in (FIXTURES / name).iterdir())
    assert size < 2 * 1024 * 1024
    # The file is already in fetch-time order (the reader sorts, the writer must not rely on it).
    in_file = [r.fetched_at for r in iter_responses(FIXTURES / name)]
    assert in_file == sorted(in_file)
    assert feed.manifest.recorded_from == feed.start
    assert feed.manifest.recorded_to == feed.end
    assert {r.feed for r in feed.responses} == {f.name for f in feed.feeds}
    assert all(r.status == 200 for r in feed.responses)


@pytest.mark.parametrize("name", RECORDINGS)
def test_every_response_parses(name: str) -> None:
    observations = list(parsed(name))
    assert observations
    assert all(obs.provider_match_id for _, _, obs in observations)


@pytest.mark.parametrize("name", RECORDINGS)
def test_final_expectations_match_the_last_responses(name: str) -> None:
    expected = FixtureFeed(FIXTURES / name).manifest.expect["matches"]
    last: dict[tuple[str, str], MatchObservation] = {}
    for feed, _purpose, obs in parsed(name):
        last[(feed, obs.provider_match_id)] = obs
    for match in expected:
        for feed, match_id in match["providers"].items():
            obs = last[(feed, match_id)]
            where = f"{name} {match['key']} via {feed}"
            assert obs.status == MatchStatus(match["status"]), where
            assert (obs.home_score, obs.away_score) == (match["homeScore"], match["awayScore"]), (
                where
            )
            if match["penalties"] is not None:
                pens = obs.breakdown.penalties
                assert pens is not None and pens.to_json() == match["penalties"], where
            half = obs.breakdown.half_time
            if match["halfTime"] is not None and half is not None and half.is_known():
                assert half.to_json() == match["halfTime"], where


def test_recordings_cover_what_the_issue_asks() -> None:
    event_types: set[EventType] = set()
    statuses: set[MatchStatus] = set()
    retracted = shootout = False
    names: dict[tuple[str, str], tuple[str, str]] = {}
    for name in RECORDINGS:
        for feed, _purpose, obs in parsed(name):
            statuses.add(obs.status)
            names[(feed, obs.provider_match_id)] = (obs.home.name, obs.away.name)
            for event in obs.events:
                event_types.add(event.type)
                retracted |= event.retracted
                shootout |= event.shootout
    assert {
        EventType.GOAL,
        EventType.OWN_GOAL,
        EventType.PENALTY_GOAL,
        EventType.MISSED_PENALTY,
        EventType.YELLOW,
        EventType.SECOND_YELLOW,
        EventType.RED,
        EventType.SUBSTITUTION,
        EventType.VAR,
    } <= event_types
    assert retracted, "a VAR-disallowed goal"
    assert shootout, "a penalty shoot-out"
    assert {
        MatchStatus.LIVE,
        MatchStatus.HALFTIME,
        MatchStatus.EXTRA_TIME,
        MatchStatus.PENALTIES,
        MatchStatus.FINISHED,
        MatchStatus.POSTPONED,
    } <= statuses

    # The same real match from two providers: different ids, different team spellings.
    shared = 0
    for name in RECORDINGS:
        for match in FixtureFeed(FIXTURES / name).manifest.expect["matches"]:
            ids = list(match["providers"].items())
            if len(ids) < 2:
                continue
            (feed_a, id_a), (feed_b, id_b) = ids[:2]
            assert id_a != id_b
            if names[(feed_a, id_a)] != names[(feed_b, id_b)]:
                shared += 1
    assert shared >= 2


def test_providers_update_at_different_times() -> None:
    """In the two-provider recording the same goal reaches each feed at a different moment."""
    first_seen: dict[str, object] = {}
    expected = FixtureFeed(FIXTURES / "premier-league-matchday").manifest.expect["matches"]
    ids = next(m["providers"] for m in expected if m["key"] == "mun-ars")
    feed = FixtureFeed(FIXTURES / "premier-league-matchday")
    configs = feed.feed_configs()
    for response in feed.responses:
        for obs in adapter_for(configs[response.feed]).parse(response):
            if obs.provider_match_id == ids.get(response.feed) and obs.home_score == 1:
                first_seen.setdefault(response.feed, response.fetched_at)
    assert set(first_seen) == {"football-data", "api-football"}
    assert first_seen["football-data"] != first_seen["api-football"]


def test_the_generator_reproduces_the_shipped_files(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(FIXTURES / "make_fixtures.py"), str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    for name in RECORDINGS:
        for file in ("manifest.json", "responses.jsonl"):
            assert (tmp_path / name / file).read_bytes() == (FIXTURES / name / file).read_bytes(), (
                f"fixtures/{name}/{file} differs from make_fixtures.py's output: rerun it"
            )
