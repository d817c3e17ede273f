"""The fixture provider: a recording replayed in time order through the real adapters."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from livescore.model import MatchObservation, MatchStatus
from providers.api_football import ApiFootballAdapter
from providers.base import FeedConfig, ParseReport, RawResponse
from providers.errors import PayloadError, ProviderError
from providers.fixture import FixtureAdapter, FixtureFeed, ReplayClock, split_base_url
from providers.http import FeedClient, ProviderHTTPError
from providers.registry import adapter_for
from tests.waiting import FakeSleep

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
PL = FIXTURES / "premier-league-matchday"
CUP = FIXTURES / "cup-final-shootout"


def test_feed_exposes_its_feeds_and_time_ordered_responses() -> None:
    feed = FixtureFeed(PL)
    configs = feed.feed_configs()
    assert set(configs) == {"football-data", "api-football"}
    assert configs["football-data"].kind == "football-data"
    assert configs["football-data"].priority < configs["api-football"].priority
    assert configs["api-football"].competitions == ("39",)
    times = [when for when, _ in feed.timeline()]
    assert times == sorted(times)
    assert times[0] == feed.start and times[-1] == feed.end
    assert [r for _, r in feed.timeline()] == list(feed.responses)


def test_latest_is_the_last_response_at_or_before_a_time() -> None:
    feed = FixtureFeed(PL)
    lives = [r for r in feed.responses if r.feed == "api-football" and r.purpose == "live"]
    second = lives[1]
    assert feed.latest("api-football", "live", second.fetched_at) is second
    assert feed.latest("api-football", "live", second.fetched_at - timedelta(seconds=1)) is lives[0]
    assert feed.latest("api-football", "live", lives[0].fetched_at - timedelta(seconds=1)) is None
    assert feed.latest("api-football", "live", feed.end + timedelta(days=1)) is lives[-1]
    matches = [r for r in feed.responses if r.purpose == "match" and r.feed == "api-football"]
    one = matches[0]
    assert one.provider_match_id is not None
    assert feed.latest("api-football", "match", feed.end, one.provider_match_id) is one
    assert feed.latest("api-football", "match", feed.end, "999") is None


async def test_replay_as_fast_as_possible_does_not_sleep() -> None:
    feed = FixtureFeed(CUP)
    sleep = FakeSleep()
    replayed = [r async for r in feed.replay(speed=0, sleep=sleep)]
    assert replayed == list(feed.responses)
    assert sleep.waits == []


async def test_replay_waits_the_recorded_gaps_divided_by_speed() -> None:
    feed = FixtureFeed(CUP)
    sleep = FakeSleep()
    replayed = [r async for r in feed.replay(speed=60, sleep=sleep)]
    assert len(replayed) == len(feed.responses)
    assert sum(sleep.waits) == pytest.approx((feed.end - feed.start).total_seconds() / 60)
    assert all(w > 0 for w in sleep.waits)


async def test_replay_through_the_adapters_ends_on_the_expected_state() -> None:
    feed = FixtureFeed(CUP)
    configs = feed.feed_configs()
    last = None
    async for response in feed.replay(speed=0):
        for obs in adapter_for(configs[response.feed]).parse(response):
            last = obs
    assert last is not None
    assert last.status is MatchStatus.FINISHED
    assert (last.home_score, last.away_score) == (2, 2)
    assert last.breakdown.penalties is not None
    assert last.breakdown.penalties.to_json() == {"home": 4, "away": 1}


def test_replay_clock() -> None:
    wall = [100.0]
    start = datetime(2022, 9, 4, 13, 0, tzinfo=UTC)
    clock = ReplayClock(start, speed=10, monotonic=lambda: wall[0])
    assert clock.now() == start
    wall[0] += 6
    assert clock.now() == start + timedelta(minutes=1)
    clock.advance_to(start + timedelta(hours=1))
    assert clock.now() == start + timedelta(hours=1)
    frozen = ReplayClock(start, speed=0, monotonic=lambda: wall[0])
    wall[0] += 1000
    assert frozen.now() == start


def test_base_url_names_the_recording_and_feed() -> None:
    assert split_base_url("fixtures/x#api-football") == (Path("fixtures/x"), "api-football")
    assert split_base_url("fixtures/x") == (Path("fixtures/x"), None)
    with pytest.raises(ProviderError, match="--base-url"):
        split_base_url(None)


def test_a_fixture_feed_must_pick_one_of_several_recorded_feeds() -> None:
    with pytest.raises(ProviderError, match="pick one with --base-url PATH#FEED"):
        adapter_for(FeedConfig(name="pl", kind="fixture", base_url=str(PL)))
    by_name = adapter_for(FeedConfig(name="football-data", kind="fixture", base_url=str(PL)))
    assert isinstance(by_name, FixtureAdapter)
    assert by_name.recorded.name == "football-data"
    only = adapter_for(FeedConfig(name="cup", kind="fixture", base_url=str(CUP)))
    assert isinstance(only, FixtureAdapter)
    assert only.inner.kind == "api-football"


async def test_a_fixture_feed_is_polled_like_a_real_one() -> None:
    recording = FixtureFeed(PL)
    feed = FeedConfig(name="pl-af", kind="fixture", base_url=f"{PL}#api-football")
    clock = ReplayClock(recording.start, speed=0)
    adapter = FixtureAdapter(feed, recording=recording, clock=clock)
    live = adapter.live_request()
    assert live is not None
    async with FeedClient(adapter, sleep=FakeSleep()) as client:
        # Before the first recorded live poll: too early, not a crash.
        with pytest.raises(ProviderHTTPError) as info:
            await client.send(live)
        assert info.value.status == 425

        kickoff = datetime(2022, 9, 4, 13, 0, tzinfo=UTC)
        clock.advance_to(kickoff + timedelta(minutes=30))
        first = await client.poll(live)
        assert first.changed
        observations = adapter.parse(first.response)
        assert [o.provider for o in observations] == ["api-football"]
        (brighton,) = observations
        assert brighton.home.name == "Brighton"
        assert brighton.status is MatchStatus.LIVE
        assert brighton.events  # the same adapter code as a live feed: events and all

        again = await client.poll(live)  # same replay time: the same body, skipped
        assert not again.changed

        clock.advance_to(kickoff + timedelta(minutes=40))
        later = await client.poll(live)
        assert later.changed

        today = await client.send(adapter.today_request(date(2022, 9, 4)))
        assert len(adapter.parse(today)) == 3

        clock.advance_to(recording.end)
        by_id = await client.send(adapter.match_request("868015"))
        (final,) = adapter.parse(by_id)
        assert final.status is MatchStatus.FINISHED
        assert (final.home_score, final.away_score) == (3, 1)

        with pytest.raises(ProviderHTTPError) as missing:
            await client.send(adapter.match_request("1"))
        assert missing.value.status == 404


async def test_fixture_responses_keep_the_recorded_headers_and_body() -> None:
    recording = FixtureFeed(PL)
    feed = FeedConfig(name="football-data", kind="fixture", base_url=str(PL))
    clock = ReplayClock(recording.end, speed=0)
    adapter = FixtureAdapter(feed, recording=recording, clock=clock)
    async with FeedClient(adapter, sleep=FakeSleep()) as client:
        response = await client.send(adapter.today_request(date(2022, 9, 4)))
    recorded = recording.latest("football-data", "today", recording.end)
    assert recorded is not None
    assert response.body == recorded.body
    assert (
        response.headers["x-requests-available-minute"]
        == (recorded.headers["x-requests-available-minute"])
    )
    statuses = {o.provider_match_id: o.status for o in adapter.parse(response)}
    assert statuses["416331"] is MatchStatus.POSTPONED


class PublicOnly(ApiFootballAdapter):
    """An inner adapter that answers ``parse_report`` itself; its ``_parse`` must not run."""

    def __init__(self, feed: FeedConfig) -> None:
        super().__init__(feed)
        self.seen: list[RawResponse] = []

    def parse_report(self, response: RawResponse) -> ParseReport:
        self.seen.append(response)
        return ParseReport([], (PayloadError(self.kind, "response[0]", "malformed"),))

    def _parse(self, payload: Any, response: RawResponse) -> list[MatchObservation]:
        raise AssertionError("the fixture adapter reached into its inner adapter's _parse")


def test_a_fixture_feed_parses_through_the_inner_adapters_public_interface() -> None:
    recording = FixtureFeed(CUP)
    inner = PublicOnly(FeedConfig(name="cup", kind="api-football"))
    adapter = FixtureAdapter(
        FeedConfig(name="cup", kind="fixture", base_url=str(CUP)), recording=recording, inner=inner
    )
    response = recording.responses[-1]
    report = adapter.parse_report(replace(response, kind="fixture"))
    assert [str(e) for e in report.errors] == [str(e) for e in inner.parse_report(response).errors]
    with pytest.raises(PayloadError, match=r"response\[0\]"):  # strict parse: the first error
        adapter.parse(response)
    with pytest.raises(PayloadError, match=r"response\[0\]"):  # even a direct _parse delegates
        adapter._parse(None, response)
    assert [r.kind for r in inner.seen] == ["api-football"] * 4
