"""providers.parsing: the shared helpers every adapter relies on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from livescore.model import Clock, EventObservation, EventType, Period, ScoreLine
from providers.base import FeedConfig
from providers.cursor import Cursor
from providers.errors import PayloadError
from providers.parsing import (
    EventKeys,
    add_lines,
    competition_wanted,
    event_key,
    goals_agree,
    int_or_none,
    normalize_clock,
    parse_minute,
    parse_timestamp,
    plausible_update,
    subtract_lines,
    try_parse_minute,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3, 3),
        ("3", 3),
        (" 12 ", 12),
        ("", None),
        ("  ", None),
        (None, None),
        (2.0, 2),
        ("-1", -1),
    ],
)
def test_int_or_none_accepts_numbers_sent_as_strings(value: object, expected: int | None) -> None:
    assert int_or_none(value) == expected


@pytest.mark.parametrize("value", [True, "x", "1.5", 1.5, [], {}, "1e3", float("nan")])
def test_int_or_none_refuses_non_integers(value: object) -> None:
    with pytest.raises(ValueError, match="expected int"):
        int_or_none(value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90+6", (90, 6)),
        ("45'+5'", (45, 5)),
        ("90'+8'", (90, 8)),
        ("90'", (90, None)),
        ("45", (45, None)),
        (" 120 + 3 ", (120, 3)),
        ("0'", (0, None)),
        ("", (None, None)),
    ],
)
def test_parse_minute_splits_stoppage_time(text: str, expected: tuple[int, int | None]) -> None:
    assert parse_minute(text) == expected


@pytest.mark.parametrize("text", ["HT", "FT", "90+", "+3", "45:00", "abc", "1234"])
def test_parse_minute_refuses_non_minutes(text: str) -> None:
    with pytest.raises(ValueError):
        parse_minute(text)


@pytest.mark.parametrize("text", ["-5", "-5'", " - 3 ", "-45'+2'", "\u22125"])
def test_a_negative_minute_is_refused_even_where_non_minutes_are_tolerated(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected a minute in 0\.\.200"):
        parse_minute(text)
    with pytest.raises(ValueError, match=r"expected a minute in 0\.\.200"):
        try_parse_minute(text)  # "HT" gives None; "-5'" is a broken clock, not "no minute"
    assert try_parse_minute("HT") is None


@pytest.mark.parametrize("value", [-5, -1, "-5", "-5'", -5.0])
def test_a_negative_minute_is_a_payload_error_naming_the_field(value: object) -> None:
    with pytest.raises(PayloadError) as caught:
        Cursor("football-data", {"minute": value}).get("minute").opt_minute()
    assert caught.value.path == "minute"


BERLIN = ZoneInfo("Europe/Berlin")
LONDON = ZoneInfo("Europe/London")


@pytest.mark.parametrize(
    ("text", "zone", "expected"),
    [
        ("2022-09-04T10:15:00Z", None, datetime(2022, 9, 4, 10, 15, tzinfo=UTC)),
        ("2024-10-23T21:00:00+00:00", None, datetime(2024, 10, 23, 21, 0, tzinfo=UTC)),
        ("2026-06-12T19:00Z", None, datetime(2026, 6, 12, 19, 0, tzinfo=UTC)),
        ("2024-10-23T23:00:00+02:00", None, datetime(2024, 10, 23, 21, 0, tzinfo=UTC)),
        # offset-less: read in the zone the adapter names
        ("2026-10-05T19:00:00", UTC, datetime(2026, 10, 5, 19, 0, tzinfo=UTC)),
        ("2026-10-05 20:30:31", LONDON, datetime(2026, 10, 5, 19, 30, 31, tzinfo=UTC)),
        ("2022-09-04T11:26:08", BERLIN, datetime(2022, 9, 4, 9, 26, 8, tzinfo=UTC)),
        ("2024-01-15T12:00:00", BERLIN, datetime(2024, 1, 15, 11, 0, tzinfo=UTC)),
    ],
)
def test_parse_timestamp_gives_aware_utc(text: str, zone: Any, expected: datetime) -> None:
    parsed = parse_timestamp(text, zone)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-10-05 20:30:31", "no UTC offset"),
        ("yesterday", "ISO 8601"),
        ("0001-01-01T00:00:00+01:00", "out of range"),
        ("2026-13-01T00:00:00Z", "ISO 8601"),
    ],
)
def test_parse_timestamp_refuses_bad_values(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_timestamp(text, None)


def test_plausible_update_drops_stamps_from_the_future() -> None:
    fetched = datetime(2026, 10, 5, 19, 31, tzinfo=UTC)
    assert plausible_update(fetched - timedelta(minutes=1), fetched) == fetched - timedelta(
        minutes=1
    )
    assert plausible_update(fetched + timedelta(hours=1), fetched) is None
    naive_fetch = fetched.replace(tzinfo=None)
    assert plausible_update(fetched, naive_fetch) == fetched


@pytest.mark.parametrize(
    ("minute", "added", "period", "expected"),
    [
        (93, None, Period.SECOND_HALF, Clock(90, 3, Period.SECOND_HALF)),
        (47, None, Period.FIRST_HALF, Clock(45, 2, Period.FIRST_HALF)),
        (45, 1, Period.FIRST_HALF, Clock(45, 1, Period.FIRST_HALF)),
        (121, None, Period.EXTRA_TIME, Clock(120, 1, Period.EXTRA_TIME)),
        (104, None, Period.EXTRA_TIME, Clock(104, None, Period.EXTRA_TIME)),
        (93, None, None, Clock(93, None, None)),
        (95, None, Period.FULL_TIME, Clock(95, None, Period.FULL_TIME)),
    ],
)
def test_normalize_clock_moves_stoppage_into_added_time(
    minute: int, added: int | None, period: Period | None, expected: Clock
) -> None:
    assert normalize_clock(minute, added, period) == expected


def test_cursor_errors_name_the_field_path() -> None:
    root = Cursor(
        "football-data", {"matches": [{}, {}, {}, {"score": {"fullTime": {"home": "x"}}}]}
    )
    home = root["matches"].items()[3]["score"]["fullTime"]["home"]
    with pytest.raises(PayloadError) as caught:
        home.opt_int()
    assert caught.value.provider == "football-data"
    assert caught.value.path == "matches[3].score.fullTime.home"
    assert caught.value.problem == "expected int, got str 'x'"
    assert "football-data: malformed payload at matches[3].score.fullTime.home" in str(caught.value)


@pytest.mark.parametrize(
    ("value", "access", "path", "problem"),
    [
        ({}, lambda c: c["id"], "id", "missing"),
        ({"id": None}, lambda c: c["id"], "id", "expected a value, got null"),
        ([], lambda c: c["id"], "$", "expected object, got list of 0 items"),
        ({"a": 1}, lambda c: c["a"].items(), "a", "expected list, got int 1"),
        ({"a": {"b": 5}}, lambda c: c["a"]["b"].as_str(), "a.b", "expected string, got int 5"),
        ({"a": [1.5]}, lambda c: c["a"].items()[0].as_id(), "a[0]", "expected an id"),
        ({"s": 10**30}, lambda c: c["s"].opt_int(), "s", "expected int in 0..999"),
        ({"s": -1}, lambda c: c["s"].opt_int(), "s", "expected int in 0..999"),
        ({"f": "yes"}, lambda c: c["f"].opt_bool(), "f", "expected boolean"),
        ({"m": "soon"}, lambda c: c["m"].opt_minute(), "m", "expected a minute"),
        ({"m": "90+150"}, lambda c: c["m"].opt_minute(), "m", "expected added time"),
        ({"t": "later"}, lambda c: c["t"].opt_timestamp(), "t", "ISO 8601"),
        ({"x": {"y": []}}, lambda c: c["x"].get("y").opt_scalar(), "x.y", "expected a scalar"),
        ({"v": "inf"}, lambda c: c["v"].opt_float(), "v", "finite number"),
    ],
)
def test_cursor_accessors_raise_payload_errors(
    value: Any, access: Any, path: str, problem: str
) -> None:
    with pytest.raises(PayloadError) as caught:
        access(Cursor("espn", value))
    assert caught.value.path == path
    assert problem in caught.value.problem


def test_cursor_optional_access_tolerates_absence() -> None:
    root = Cursor("espn", {"a": None, "b": {"c": ""}})
    assert root.get("missing").get("deeper").opt_int() is None
    assert root.get("a").opt_str() is None
    assert root["b"]["c"].opt_str() is None
    assert root.get("a").opt_items() is None
    assert root.get("z").score_line() is None
    assert Cursor("espn", {"home": "2", "away": 1}).score_line() == ScoreLine(2, 1)
    assert Cursor("espn", {"home": None, "away": ""}).score_line() is None


@pytest.mark.parametrize(
    ("team_id", "expected"), [("10", "home"), (10, "home"), ("20", "away"), (None, None)]
)
def test_cursor_side_matches_team_ids(team_id: object, expected: str | None) -> None:
    assert Cursor("espn", team_id).side("10", "20") == expected


def test_cursor_side_refuses_a_stranger() -> None:
    with pytest.raises(PayloadError, match="neither home"):
        Cursor("espn", "30", "details[0].team.id").side("10", "20")


def test_event_keys_are_deterministic_and_count_ordinals() -> None:
    first, second = EventKeys("api-football", "77"), EventKeys("api-football", "77")
    calls = [
        (EventType.YELLOW, "home", 10, None),
        (EventType.YELLOW, "home", 10, None),
        (EventType.YELLOW, "away", 10, None),
        (EventType.GOAL, "home", 90, 6),
    ]
    keys = [first.next(*call) for call in calls]
    assert keys == [second.next(*call) for call in calls]
    assert keys == [
        "api-football:77:yellow:home:10:0",
        "api-football:77:yellow:home:10:1",
        "api-football:77:yellow:away:10:0",
        "api-football:77:goal:home:90+6:0",
    ]
    assert first.next(EventType.PENALTY_GOAL, "home", 120, 1, shootout=True) == (
        "api-football:77:penalty_goal.so:home:120+1:0"
    )
    assert event_key("espn", "1", EventType.TEXT, None, None, None, 0) == "espn:1:text:-:-:0"


def _goal(side: str | None, **kw: Any) -> EventObservation:
    return EventObservation(key=f"k{id(kw)}", type=EventType.GOAL, minute=1, side=side, **kw)


@pytest.mark.parametrize(
    ("events", "home", "away", "agree"),
    [
        ([], 0, 0, True),
        ([], None, None, True),
        ([_goal("home"), _goal("away")], 1, 1, True),
        ([_goal("home"), _goal("home", retracted=True)], 1, 0, True),
        ([_goal("home"), _goal("away", shootout=True)], 1, 0, True),
        ([_goal("home")], 0, 3, False),
        ([_goal(None)], 1, 0, False),
    ],
)
def test_goals_agree_ignores_retracted_and_shootout(
    events: list[EventObservation], home: int | None, away: int | None, agree: bool
) -> None:
    assert goals_agree(events, home, away) is agree


def test_score_line_arithmetic() -> None:
    assert add_lines(ScoreLine(1, 1), ScoreLine(1, 0)) == ScoreLine(2, 1)
    assert add_lines(ScoreLine(1, 1), None) == ScoreLine(1, 1)
    assert add_lines(ScoreLine(None, 1), ScoreLine(1, 0)) is None
    assert subtract_lines(ScoreLine(5, 6), ScoreLine(4, 5)) == ScoreLine(1, 1)
    assert subtract_lines(ScoreLine(1, 6), ScoreLine(4, 5)) is None


@pytest.mark.parametrize(
    ("configured", "names", "wanted"),
    [
        ((), ("2021", "Premier League"), True),
        (("PL",), ("2021", "PL", "Premier League"), True),
        (("premier league",), ("2021", "Premier League"), True),
        (("39",), ("39", None), True),
        (("CL",), ("2021", "PL"), False),
    ],
)
def test_competition_filter(configured: tuple[str, ...], names: Any, wanted: bool) -> None:
    feed = FeedConfig(name="f", kind="espn", competitions=configured)
    assert competition_wanted(feed, *names) is wanted


def test_fixed_offset_zone_round_trip() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert parse_timestamp("2022-09-04T11:26:08", plus_two) == datetime(
        2022, 9, 4, 9, 26, 8, tzinfo=UTC
    )
