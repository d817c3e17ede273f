"""One contract, every adapter: registry, purity, and invariants over every stored payload."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from livescore.model import EventType, MatchStatus
from providers.api_football import ApiFootballAdapter
from providers.base import FEED_KINDS, Adapter, FeedConfig
from providers.errors import ErrorResponse, PayloadError, ProviderError
from providers.espn import EspnAdapter
from providers.football_data import FootballDataAdapter
from providers.registry import ADAPTERS, adapter_for, register
from providers.thesportsdb import TheSportsDbAdapter
from tests.providers.conftest import PAYLOADS, recorded_response

REAL_KINDS = ("football-data", "api-football", "espn", "thesportsdb")
STORED = sorted(
    (path.parent.name, path.name)
    for path in PAYLOADS.glob("*/*.json")
    if path.parent.name in REAL_KINDS
)


@pytest.mark.parametrize(
    ("kind", "cls"),
    [
        ("football-data", FootballDataAdapter),
        ("api-football", ApiFootballAdapter),
        ("espn", EspnAdapter),
        ("thesportsdb", TheSportsDbAdapter),
    ],
)
def test_registry_maps_each_kind(kind: str, cls: type[Adapter]) -> None:
    feed = FeedConfig(name=f"my-{kind}", kind=kind)
    adapter = adapter_for(feed)
    assert type(adapter) is cls
    assert adapter.kind == kind and adapter.feed is feed
    assert kind in FEED_KINDS


def test_unknown_kind_is_a_clear_provider_error() -> None:
    with pytest.raises(ProviderError) as caught:
        adapter_for(FeedConfig(name="odds", kind="betfair"))
    message = str(caught.value)
    assert "'odds'" in message and "'betfair'" in message
    assert "football-data" in message and "fixture" in message


def test_fixture_kind_is_loaded_on_demand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(ADAPTERS, "fixture", raising=False)
    with pytest.raises(ProviderError, match="manifest"):  # an empty directory is no recording
        adapter_for(FeedConfig(name="replay", kind="fixture", base_url=str(tmp_path)))
    from providers.fixture import FixtureAdapter

    assert ADAPTERS["fixture"] is FixtureAdapter


def test_register_adds_a_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    class Other(EspnAdapter):
        kind = "other"

    monkeypatch.setitem(ADAPTERS, "other", EspnAdapter)
    assert register(Other) is Other
    assert type(adapter_for(FeedConfig(name="o", kind="other"))) is Other


@pytest.mark.parametrize("kind", REAL_KINDS)
def test_requests_are_pure_data(kind: str) -> None:
    adapter = ADAPTERS[kind](FeedConfig(name=kind, kind=kind))
    today = adapter.today_request(date(2026, 10, 5))
    assert today.purpose == "today" and today.path.startswith("/")
    assert today.path == adapter.today_request(date(2026, 10, 5)).path
    one = adapter.match_request("42")
    assert (one.purpose, one.provider_match_id) == ("match", "42")
    live = adapter.live_request()
    assert live is None or live.purpose == "live"


def test_normalization_modules_import_no_io_libraries() -> None:
    modules = ", ".join(
        f"providers.{name}"
        for name in (
            "parsing",
            "cursor",
            "kinds",
            "football_data",
            "api_football",
            "espn",
            "thesportsdb",
        )
    )
    code = (
        f"import sys, {modules}\n"
        "bad = [m for m in ('httpx', 'psycopg', 'redis', 'sanic') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(("kind", "name"), STORED)
def test_every_stored_payload_keeps_the_contract(kind: str, name: str) -> None:
    response = recorded_response(kind, name)
    adapter = ADAPTERS[kind](FeedConfig(name=kind, kind=kind))
    observations = adapter.parse(response)
    assert observations or name.endswith("empty.json")
    for obs in observations:
        assert obs.provider == kind and obs.sport == "football"
        assert obs.provider_match_id and obs.home.provider_id and obs.away.provider_id
        assert obs.start_time.utcoffset() == timedelta(0)
        assert isinstance(obs.status, MatchStatus)
        if obs.provider_updated_at is not None:
            assert obs.provider_updated_at <= response.fetched_at + timedelta(minutes=5)
        keys = [event.key for event in obs.events]
        assert len(keys) == len(set(keys)), "event keys must be unique within a match"
        for event in obs.events:
            assert event.key.startswith(f"{kind}:{obs.provider_match_id}:")
            if event.shootout:
                assert event.type in (EventType.PENALTY_GOAL, EventType.MISSED_PENALTY)
    # re-parsing the same response gives the same observations, keys included
    assert adapter.parse(response) == observations


@pytest.mark.parametrize("kind", REAL_KINDS)
@pytest.mark.parametrize(
    ("status", "meaning"), [(429, "rate limited"), (500, "provider error"), (404, "not found")]
)
def test_an_http_error_response_is_reported_as_what_it_is(
    kind: str, status: int, meaning: str
) -> None:
    """Only a recording holds one (live errors are raised on arrival); its body,
    even a valid-looking one, is never parsed as matches nor called malformed."""
    stored = next(name for k, name in STORED if k == kind)
    response = replace(recorded_response(kind, stored), status=status)
    adapter = ADAPTERS[kind](FeedConfig(name=kind, kind=kind))
    with pytest.raises(ErrorResponse) as caught:
        adapter.parse_report(response)
    assert f"recorded response was HTTP {status} ({meaning})" in str(caught.value)
    assert not isinstance(caught.value, PayloadError)
    assert caught.value.status == status


def test_one_malformed_match_does_not_cost_the_others_in_ingestion() -> None:
    """parse_report sets a malformed match aside; parse stays strict."""
    import orjson

    from providers.base import FeedConfig, RawResponse
    from providers.errors import PayloadError
    from providers.football_data import FootballDataAdapter

    adapter = FootballDataAdapter(FeedConfig(name="fd", kind="football-data"))
    good = {
        "id": 1, "utcDate": "2022-09-04T13:00:00Z", "status": "FINISHED",
        "homeTeam": {"id": 10, "name": "Home FC"}, "awayTeam": {"id": 11, "name": "Away FC"},
        "score": {"fullTime": {"home": 2, "away": 1}, "halfTime": {"home": 1, "away": 0}},
    }  # fmt: skip
    bad = dict(good, id=2, status="NOT_A_STATUS")
    body = orjson.dumps({"matches": [good, bad]}).decode()
    response = RawResponse(
        feed="fd", kind="football-data", purpose="today", method="GET", url="u", params={},
        status=200, headers={}, body=body, fetched_at=datetime(2022, 9, 4, 14, tzinfo=UTC),
    )  # fmt: skip
    report = adapter.parse_report(response)
    assert [o.provider_match_id for o in report.observations] == ["1"]
    assert len(report.errors) == 1 and "matches[1].status" in str(report.errors[0])
    with pytest.raises(PayloadError):
        adapter.parse(response)
