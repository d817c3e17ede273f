"""TheSportsDB: the v2 livescore sample, v1 eventsday rows, fragment tables."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest

from livescore.model import (
    Breakdown,
    Clock,
    CompetitionRef,
    MatchStatus,
    Period,
    ScoreLine,
    TeamRef,
)
from providers.base import FeedConfig
from providers.errors import PayloadError
from providers.thesportsdb import TheSportsDbAdapter
from tests.providers.conftest import Parse

KIND = "thesportsdb"
SAMPLE = "thesportsdb-v2-livescore-soccer.json"
EVENTSDAY = "eventsday-2026-10-05-soccer.json"
Payload = Callable[[str, str], Any]


# -- the verbatim v2 livescore sample --------------------------------------------------


def test_livescore_sample_normalizes_every_match(payload: Payload, parse: Parse) -> None:
    observations = parse(KIND, payload(KIND, SAMPLE), purpose="live")
    assert len(observations) == 17
    assert Counter(o.status for o in observations) == {
        MatchStatus.LIVE: 15,
        MatchStatus.FINISHED: 1,
        MatchStatus.HALFTIME: 1,
    }
    assert all(not o.events_complete and o.events == () for o in observations)
    assert all(o.start_time.tzinfo is UTC for o in observations)
    by_id = {o.provider_match_id: o for o in observations}
    first = by_id["2608413"]
    assert first.home == TeamRef("140276", "Guadeloupe")
    assert first.away == TeamRef("140282", "St Lucia")
    assert first.competition == CompetitionRef("5280", "CONCACAF Nations League")
    assert (first.home_score, first.away_score) == (0, 1)
    assert first.start_time == datetime(2026, 10, 5, 19, 0, tzinfo=UTC)
    assert first.clock == Clock(30, None, Period.FIRST_HALF)
    assert first.provider_status == "1H"
    # "updated": "2026-10-05 20:30:31" is UK summer time (BST, UTC+1)
    assert first.provider_updated_at == datetime(2026, 10, 5, 19, 30, 31, tzinfo=UTC)
    france = by_id["2442808"]
    assert (france.home.name, france.away.name, france.home_score, france.away_score) == (
        "France",
        "Belgium",
        0,
        1,
    )
    assert france.start_time == datetime(2026, 10, 5, 18, 45, tzinfo=UTC)
    moss = by_id["2407903"]
    assert (moss.status, moss.home_score, moss.away_score) == (MatchStatus.FINISHED, 0, 2)
    assert moss.clock == Clock(90, 6, Period.FULL_TIME)  # strProgress "90+6"
    assert moss.breakdown == Breakdown(regular_time=ScoreLine(0, 2))
    assert moss.provider_updated_at == datetime(2026, 10, 5, 18, 58, 32, tzinfo=UTC)
    cordoba = by_id["2505786"]
    assert (cordoba.status, cordoba.clock) == (
        MatchStatus.HALFTIME,
        Clock(45, None, Period.HALFTIME),
    )
    assert cordoba.breakdown == Breakdown(half_time=ScoreLine(2, 1))


def test_update_stamps_never_lie_ahead_of_the_fetch(payload: Payload, parse: Parse) -> None:
    fetched = datetime(2026, 10, 5, 19, 31, tzinfo=UTC)
    observations = parse(KIND, payload(KIND, SAMPLE), fetched_at=fetched)
    assert all(o.provider_updated_at and o.provider_updated_at <= fetched for o in observations)


def test_nothing_live_is_an_empty_list(payload: Payload, parse: Parse) -> None:
    assert parse(KIND, payload(KIND, "livescore-soccer-empty.json"), purpose="live") == []


# -- v1 eventsday ----------------------------------------------------------------------


def test_eventsday_rows(payload: Payload, parse: Parse) -> None:
    by_id = {o.provider_match_id: o for o in parse(KIND, payload(KIND, EVENTSDAY))}
    assert list(by_id) == ["2267181", "2267182", "2267183", "2267184", "2267185"]
    done = by_id["2267181"]
    assert (done.status, done.provider_status) == (MatchStatus.FINISHED, "MATCH FINISHED")
    assert (done.home_score, done.away_score) == (2, 1)
    assert done.competition == CompetitionRef("4328", "English Premier League", "England")
    assert done.breakdown == Breakdown(regular_time=ScoreLine(2, 1))
    upcoming = by_id["2267182"]
    assert upcoming.status is MatchStatus.SCHEDULED
    assert (upcoming.home_score, upcoming.away_score, upcoming.clock) == (None, None, Clock())
    assert upcoming.start_time == datetime(2026, 10, 5, 16, 30, tzinfo=UTC)  # dateEvent+strTime
    postponed = by_id["2267183"]
    assert (postponed.status, postponed.home_score) == (MatchStatus.POSTPONED, None)
    assert postponed.start_time == datetime(2026, 10, 5, 0, 0, tzinfo=UTC)  # no time given
    blank = by_id["2267184"]
    assert (blank.status, blank.provider_status) == (MatchStatus.FINISHED, "")
    assert blank.start_time == datetime(2026, 10, 5, 11, 30, tzinfo=UTC)
    aet = by_id["2267185"]
    assert (aet.status, aet.home_score, aet.away_score) == (MatchStatus.FINISHED, 1, 1)
    assert aet.clock == Clock(120, None, Period.FULL_TIME)
    assert aet.breakdown == Breakdown()  # AET: the phases are not known


@pytest.mark.parametrize(
    ("competitions", "expected"),
    [
        (("4329",), ["2267184"]),
        (("english premier league",), ["2267181", "2267182", "2267183", "2267185"]),
        (("9999",), []),
    ],
)
def test_competition_filter(
    payload: Payload, parse: Parse, competitions: tuple[str, ...], expected: list[str]
) -> None:
    found = parse(KIND, payload(KIND, EVENTSDAY), competitions=competitions)
    assert [o.provider_match_id for o in found] == expected
    assert len(parse(KIND, payload(KIND, EVENTSDAY), "match", competitions)) == 5


# -- fragment tables -------------------------------------------------------------------


def one_row(payload: Payload, **changes: Any) -> dict[str, Any]:
    body = payload(KIND, SAMPLE)
    row = body["livescore"][0]
    row.update(changes)
    return {"livescore": [row]}


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("NS", MatchStatus.SCHEDULED),
        ("Not Started", MatchStatus.SCHEDULED),
        ("TBD", MatchStatus.SCHEDULED),
        ("1H", MatchStatus.LIVE),
        ("HT", MatchStatus.HALFTIME),
        ("2H", MatchStatus.LIVE),
        ("ET", MatchStatus.EXTRA_TIME),
        ("BT", MatchStatus.EXTRA_TIME),
        ("P", MatchStatus.PENALTIES),
        ("FT", MatchStatus.FINISHED),
        ("AET", MatchStatus.FINISHED),
        ("PEN", MatchStatus.FINISHED),
        ("Match Finished", MatchStatus.FINISHED),
        ("PST", MatchStatus.POSTPONED),
        ("CANC", MatchStatus.CANCELLED),
        ("ABD", MatchStatus.ABANDONED),
        ("SUSP", MatchStatus.SUSPENDED),
        ("INT", MatchStatus.SUSPENDED),
        ("LIVE", MatchStatus.LIVE),
        ("ft", MatchStatus.FINISHED),
    ],
)
def test_status_vocabulary(
    payload: Payload, parse: Parse, code: str, expected: MatchStatus
) -> None:
    [match] = parse(KIND, one_row(payload, strStatus=code))
    assert match.status is expected


@pytest.mark.parametrize(
    ("code", "home", "expected"),
    [
        ("", "1", MatchStatus.FINISHED),
        ("", None, MatchStatus.SCHEDULED),
        (None, "", MatchStatus.SCHEDULED),
    ],
)
def test_empty_status_uses_the_scores(
    payload: Payload, parse: Parse, code: str | None, home: str | None, expected: MatchStatus
) -> None:
    [match] = parse(KIND, one_row(payload, strStatus=code, intHomeScore=home))
    assert match.status is expected


@pytest.mark.parametrize("code", ["Q3", "Overtime", 3])
def test_unknown_status_is_a_payload_error(payload: Payload, parse: Parse, code: object) -> None:
    with pytest.raises(PayloadError) as caught:
        parse(KIND, one_row(payload, strStatus=code))
    assert caught.value.path == "livescore[0].strStatus"


@pytest.mark.parametrize(
    ("status", "progress", "expected"),
    [
        ("1H", "45", Clock(45, None, Period.FIRST_HALF)),
        ("1H", "45+2", Clock(45, 2, Period.FIRST_HALF)),
        ("1H", "47", Clock(45, 2, Period.FIRST_HALF)),
        ("2H", "90+6", Clock(90, 6, Period.SECOND_HALF)),
        ("2H", 67, Clock(67, None, Period.SECOND_HALF)),
        ("2H", "", Clock(None, None, Period.SECOND_HALF)),
        ("2H", None, Clock(None, None, Period.SECOND_HALF)),
        ("FT", "90+6", Clock(90, 6, Period.FULL_TIME)),
        ("NS", "0", Clock()),
    ],
)
def test_progress_gives_the_clock(
    payload: Payload, parse: Parse, status: str, progress: object, expected: Clock
) -> None:
    [match] = parse(KIND, one_row(payload, strStatus=status, strProgress=progress))
    assert match.clock == expected


@pytest.mark.parametrize(
    ("home", "away", "expected"),
    [("3", "0", (3, 0)), ("", "", (None, None)), (None, None, (None, None)), (2, "1", (2, 1))],
)
def test_scores_as_strings(
    payload: Payload, parse: Parse, home: object, away: object, expected: tuple[int, int]
) -> None:
    [match] = parse(KIND, one_row(payload, intHomeScore=home, intAwayScore=away))
    assert (match.home_score, match.away_score) == expected


@pytest.mark.parametrize(
    ("updated", "fetched", "expected"),
    [
        (
            "2026-10-05 20:30:31",
            (2026, 10, 5, 19, 31),
            datetime(2026, 10, 5, 19, 30, 31, tzinfo=UTC),
        ),
        ("2026-01-10 15:00:00", (2026, 1, 10, 15, 10), datetime(2026, 1, 10, 15, 0, tzinfo=UTC)),
        ("2026-10-05T19:00:00+00:00", (2026, 10, 5, 19, 31), datetime(2026, 10, 5, 19, tzinfo=UTC)),
        ("2026-10-05 22:30:31", (2026, 10, 5, 19, 31), None),  # ahead of the fetch: dropped
        (None, (2026, 10, 5, 19, 31), None),
        ("", (2026, 10, 5, 19, 31), None),
    ],
)
def test_offsetless_updated_is_uk_time(
    payload: Payload,
    parse: Parse,
    updated: str | None,
    fetched: tuple[int, ...],
    expected: datetime | None,
) -> None:
    body = one_row(payload, updated=updated)
    [match] = parse(KIND, body, fetched_at=datetime(*fetched, tzinfo=UTC))
    assert match.provider_updated_at == expected


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"strTimestamp": "2026-10-05T19:00:00"}, datetime(2026, 10, 5, 19, 0, tzinfo=UTC)),
        ({"strTimestamp": "2026-10-05T19:00:00+01:00"}, datetime(2026, 10, 5, 18, 0, tzinfo=UTC)),
        ({"strTimestamp": None, "strTime": "19:15:00"}, datetime(2026, 10, 5, 19, 15, tzinfo=UTC)),
        ({"strTimestamp": "", "strTime": "19:15"}, datetime(2026, 10, 5, 19, 15, tzinfo=UTC)),
        ({"strTimestamp": None}, datetime(2026, 10, 5, 0, 0, tzinfo=UTC)),
    ],
)
def test_kickoff_is_utc(
    payload: Payload, parse: Parse, changes: dict[str, Any], expected: datetime
) -> None:
    [match] = parse(KIND, one_row(payload, **changes))
    assert match.start_time == expected


@pytest.mark.parametrize(
    ("changes", "path", "problem"),
    [
        ({"intHomeScore": "x"}, "livescore[0].intHomeScore", "got str 'x'"),
        ({"intAwayScore": "-2"}, "livescore[0].intAwayScore", "0..999"),
        ({"idEvent": None}, "livescore[0].idEvent", "null"),
        ({"strHomeTeam": ""}, "livescore[0].strHomeTeam", "non-empty string"),
        ({"strProgress": "half"}, "livescore[0].strProgress", "expected a minute"),
        ({"updated": "last tuesday"}, "livescore[0].updated", "ISO 8601"),
        ({"strTimestamp": None, "dateEvent": None}, "livescore[0].dateEvent", "null"),
        ({"strTimestamp": None, "strTime": "TBD"}, "livescore[0].dateEvent+strTime", "ISO 8601"),
    ],
)
def test_malformed_rows_name_the_field(
    payload: Payload, parse: Parse, changes: dict[str, Any], path: str, problem: str
) -> None:
    with pytest.raises(PayloadError) as caught:
        parse(KIND, one_row(payload, **changes))
    assert (caught.value.provider, caught.value.path) == ("thesportsdb", path)
    assert problem in caught.value.problem


def test_other_sports_are_skipped(payload: Payload, parse: Parse) -> None:
    assert parse(KIND, one_row(payload, strSport="Basketball")) == []


@pytest.mark.parametrize("body", [{"events": "none"}, {"results": []}, ["x"]])
def test_unexpected_documents(parse: Parse, body: Any) -> None:
    with pytest.raises(PayloadError) as caught:
        parse(KIND, body)
    assert caught.value.path == "$"


def test_requests_keep_the_key_out_of_the_recorded_path() -> None:
    adapter = TheSportsDbAdapter(FeedConfig(name="tsdb", kind=KIND, secret_env="TSDB_KEY"))
    today = adapter.today_request(date(2026, 10, 5))
    assert today.path == "/api/v1/json/{key}/eventsday.php"
    assert today.params == (("d", "2026-10-05"), ("s", "Soccer"))
    assert adapter.url_path(today, "s3cret") == "/api/v1/json/s3cret/eventsday.php"
    assert adapter.url_path(today, None) == "/api/v1/json/123/eventsday.php"  # public test key
    live = adapter.live_request()
    assert live.path == "/api/v2/json/livescore/soccer"
    assert adapter.url_path(live, "s3cret") == live.path
    assert adapter.auth("s3cret") == ({"X-API-KEY": "s3cret"}, {})
    one = adapter.match_request("2608413")
    assert (one.path, one.params, one.provider_match_id) == (
        "/api/v1/json/{key}/lookupevent.php",
        (("id", "2608413"),),
        "2608413",
    )
    assert adapter.base_url == "https://www.thesportsdb.com"
