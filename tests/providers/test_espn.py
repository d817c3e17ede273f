"""ESPN soccer scoreboard/summary: the World Cup sample, a quirks board, fragment tables."""

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
    EventType,
    MatchStatus,
    Period,
    ScoreLine,
    TeamRef,
)
from providers.base import FeedConfig
from providers.errors import PayloadError
from providers.espn import EspnAdapter
from tests.providers.conftest import Parse

KIND = "espn"
SAMPLE = "espn-soccer-scoreboard-finished-with-details.json"
QUIRKS = "scoreboard-all-quirks.json"
Payload = Callable[[str, str], Any]


# -- the verbatim World Cup sample -----------------------------------------------------


def test_world_cup_sample_normalizes_both_matches(payload: Payload, parse: Parse) -> None:
    canada, usa = parse(KIND, payload(KIND, SAMPLE))
    assert canada.provider_match_id == "760416"
    assert canada.home == TeamRef("206", "Canada", "Canada", "CAN")
    assert canada.away == TeamRef("452", "Bosnia-Herzegovina", "Bosnia-Herz", "BIH")
    assert canada.competition == CompetitionRef("606", "FIFA World Cup")
    assert canada.start_time == datetime(2026, 6, 12, 19, 0, tzinfo=UTC)
    assert (canada.status, canada.provider_status) == (MatchStatus.FINISHED, "STATUS_FULL_TIME")
    assert (canada.home_score, canada.away_score) == (1, 1)
    assert canada.breakdown == Breakdown(regular_time=ScoreLine(1, 1))
    # clock.value is capped at 5400.0; the display clock carries the stoppage time
    assert canada.clock == Clock(90, 7, Period.FULL_TIME)
    assert Counter(e.type for e in canada.events) == {EventType.YELLOW: 5, EventType.GOAL: 2}
    assert canada.events_complete
    assert canada.stats["home"]["possessionPct"] == "61.1"
    assert canada.stats["away"]["totalShots"] == "8"

    assert (usa.home.name, usa.away.name, usa.home_score, usa.away_score) == (
        "United States",
        "Paraguay",
        4,
        1,
    )
    assert usa.start_time == datetime(2026, 6, 13, 1, 0, tzinfo=UTC)
    assert usa.clock == Clock(90, 9, Period.FULL_TIME)
    assert len(usa.events) == 11
    goals = [
        (e.type, e.minute, e.added_time, e.side, e.actor)
        for e in usa.events
        if e.type in (EventType.GOAL, EventType.OWN_GOAL)
    ]
    assert goals == [
        (EventType.OWN_GOAL, 7, None, "home", "Damián Bobadilla"),  # a Paraguay player
        (EventType.GOAL, 31, None, "home", "Folarin Balogun"),
        (EventType.GOAL, 45, 5, "home", "Folarin Balogun"),
        (EventType.GOAL, 73, None, "away", "Maurício"),
        (EventType.GOAL, 90, 8, "home", "Giovanni Reyna"),
    ]
    assert usa.events[0].metadata == {"player_side": "away"}
    assert usa.events[-1].key == "espn:760417:goal:home:90+8:0"
    assert usa.events_complete


# -- the derived quirks board ----------------------------------------------------------


def test_shootout_final(payload: Payload, parse: Parse) -> None:
    final = parse(KIND, payload(KIND, QUIRKS))[0]
    assert (final.status, final.provider_status) == (MatchStatus.FINISHED, "STATUS_FINAL_PEN")
    assert (final.home_score, final.away_score) == (2, 1)
    assert final.breakdown == Breakdown(
        half_time=ScoreLine(1, 1),
        regular_time=ScoreLine(2, 1),
        extra_time=ScoreLine(0, 0),
        penalties=ScoreLine(3, 2),
    )
    assert final.clock == Clock(120, 3, Period.FULL_TIME)
    assert final.competition == CompetitionRef("2", "UEFA Champions League")
    kinds = Counter((e.type, e.shootout) for e in final.events)
    assert kinds == {
        (EventType.GOAL, False): 2,
        (EventType.YELLOW, False): 2,
        (EventType.PENALTY_GOAL, False): 1,
        (EventType.MISSED_PENALTY, False): 1,  # a miss in play is not a goal
        (EventType.SECOND_YELLOW, False): 1,
        (EventType.PENALTY_GOAL, True): 5,
        (EventType.MISSED_PENALTY, True): 2,
    }
    kicks = [e.key for e in final.events if e.shootout and e.side == "home"]
    assert kicks == [
        "espn:700101:penalty_goal.so:home:120:0",
        "espn:700101:missed_penalty.so:home:120:0",
        "espn:700101:penalty_goal.so:home:120:1",
        "espn:700101:penalty_goal.so:home:120:2",
    ]
    assert final.events_complete


def test_live_halftime_postponed_scheduled(payload: Payload, parse: Parse) -> None:
    _, live, half, postponed, scheduled = parse(KIND, payload(KIND, QUIRKS))
    assert (live.status, live.home_score, live.away_score) == (MatchStatus.LIVE, 0, 1)
    assert live.clock == Clock(90, 4, Period.SECOND_HALF)
    [own_goal] = live.events
    assert (own_goal.type, own_goal.side, own_goal.actor) == (
        EventType.OWN_GOAL,
        "away",  # ESPN's team.id is the team credited with the goal
        "Olivier Boscagli",
    )
    assert own_goal.metadata == {"player_side": "home"}
    assert live.events_complete
    assert half.status is MatchStatus.HALFTIME
    assert half.clock == Clock(45, None, Period.HALFTIME)  # "HT" display, 2700 s
    assert half.breakdown == Breakdown(half_time=ScoreLine(1, 0))
    assert half.events[0].message == "Goal - Header"
    assert postponed.status is MatchStatus.POSTPONED
    assert (postponed.home_score, postponed.away_score, postponed.clock) == (None, None, Clock())
    assert postponed.competition == CompetitionRef("700", "English Premier League")
    assert scheduled.status is MatchStatus.SCHEDULED
    assert (scheduled.home_score, scheduled.away_score) == (None, None)
    assert not scheduled.events_complete


@pytest.mark.parametrize(
    ("competitions", "expected"),
    [
        ((), ["700101", "700102", "700103", "700104", "700105"]),
        (("eng.1",), ["700104", "700105"]),
        (("UCL", "700"), ["700101", "700102", "700103", "700104", "700105"]),
        (("2",), ["700101", "700102", "700103"]),
        (("fifa.world",), []),
    ],
)
def test_competition_filter_on_the_all_board(
    payload: Payload, parse: Parse, competitions: tuple[str, ...], expected: list[str]
) -> None:
    found = parse(KIND, payload(KIND, QUIRKS), competitions=competitions)
    assert [o.provider_match_id for o in found] == expected


def test_summary_shape_for_one_match(payload: Payload, parse: Parse) -> None:
    [match] = parse(KIND, payload(KIND, "summary-700102.json"), purpose="match")
    assert match.provider_match_id == "700102"
    assert match.competition == CompetitionRef("2", "UEFA Champions League")
    assert (match.status, match.home_score, match.away_score) == (MatchStatus.LIVE, 0, 1)
    assert match.clock == Clock(90, 4, Period.SECOND_HALF)
    assert match.start_time == datetime(2024, 3, 13, 20, 0, tzinfo=UTC)


# -- fragment tables -------------------------------------------------------------------


def one_event(payload: Payload, **status: Any) -> dict[str, Any]:
    body = payload(KIND, SAMPLE)
    body["events"] = body["events"][:1]
    body["events"][0]["competitions"][0]["status"].update(status)
    return body


@pytest.mark.parametrize(
    ("name", "state", "completed", "expected"),
    [
        ("STATUS_SCHEDULED", "pre", False, MatchStatus.SCHEDULED),
        ("STATUS_FIRST_HALF", "in", False, MatchStatus.LIVE),
        ("STATUS_SECOND_HALF", "in", False, MatchStatus.LIVE),
        ("STATUS_HALFTIME", "in", False, MatchStatus.HALFTIME),
        ("STATUS_EXTRA_TIME", "in", False, MatchStatus.EXTRA_TIME),
        ("STATUS_HALFTIME_ET", "in", False, MatchStatus.EXTRA_TIME),
        ("STATUS_SHOOTOUT", "in", False, MatchStatus.PENALTIES),
        ("STATUS_FULL_TIME", "post", True, MatchStatus.FINISHED),
        ("STATUS_FINAL_AET", "post", True, MatchStatus.FINISHED),
        ("STATUS_FINAL_PEN", "post", True, MatchStatus.FINISHED),
        ("STATUS_POSTPONED", "post", False, MatchStatus.POSTPONED),
        ("STATUS_POSTPONED", "pre", False, MatchStatus.POSTPONED),
        ("STATUS_CANCELED", "post", False, MatchStatus.CANCELLED),
        ("STATUS_ABANDONED", "post", False, MatchStatus.ABANDONED),
        ("STATUS_SUSPENDED", "in", False, MatchStatus.SUSPENDED),
        ("STATUS_DELAYED", "pre", False, MatchStatus.SCHEDULED),
        ("STATUS_DELAYED", "in", False, MatchStatus.SUSPENDED),
        # unknown names fall back on the state
        ("STATUS_SOMETHING_NEW", "in", False, MatchStatus.LIVE),
        ("STATUS_SOMETHING_NEW", "pre", False, MatchStatus.SCHEDULED),
        ("STATUS_SOMETHING_NEW", "post", True, MatchStatus.FINISHED),
        (None, "in", False, MatchStatus.LIVE),
    ],
)
def test_status_vocabulary(
    payload: Payload,
    parse: Parse,
    name: str | None,
    state: str,
    completed: bool,
    expected: MatchStatus,
) -> None:
    kind = {"name": name, "state": state, "completed": completed}
    [match] = parse(KIND, one_event(payload, type=kind))
    assert match.status is expected
    assert match.provider_status == (name or state)


@pytest.mark.parametrize(
    "kind",
    [
        {"name": "STATUS_SOMETHING_NEW", "state": "post", "completed": False},
        {"name": "STATUS_X", "state": "later"},
        {"name": None, "state": None},
    ],
)
def test_unknown_status_is_a_payload_error(
    payload: Payload, parse: Parse, kind: dict[str, Any]
) -> None:
    with pytest.raises(PayloadError) as caught:
        parse(KIND, one_event(payload, type=kind))
    assert caught.value.path == "events[0].competitions[0].status.type"


@pytest.mark.parametrize(
    ("display", "seconds", "period", "name", "expected"),
    [
        ("90'+4'", 5400.0, 2, "STATUS_SECOND_HALF", Clock(90, 4, Period.SECOND_HALF)),
        ("67'", 4000.0, 2, "STATUS_SECOND_HALF", Clock(67, None, Period.SECOND_HALF)),
        ("45'+2'", 2700.0, 1, "STATUS_FIRST_HALF", Clock(45, 2, Period.FIRST_HALF)),
        ("HT", 2700.0, 1, "STATUS_HALFTIME", Clock(45, None, Period.HALFTIME)),
        (None, 1250.0, 1, "STATUS_FIRST_HALF", Clock(21, None, Period.FIRST_HALF)),
        ("", 5400.0, 2, "STATUS_SECOND_HALF", Clock(90, None, Period.SECOND_HALF)),
        ("105'+1'", 6300.0, 3, "STATUS_EXTRA_TIME", Clock(105, 1, Period.EXTRA_TIME)),
        ("120'", 7200.0, 5, "STATUS_SHOOTOUT", Clock(120, None, Period.PENALTIES)),
        ("0'", 0.0, 0, "STATUS_SCHEDULED", Clock()),
    ],
)
def test_stoppage_time_comes_from_the_display_clock(
    payload: Payload,
    parse: Parse,
    display: str | None,
    seconds: float,
    period: int,
    name: str,
    expected: Clock,
) -> None:
    state = "pre" if name == "STATUS_SCHEDULED" else "in"
    body = one_event(
        payload,
        displayClock=display,
        clock=seconds,
        period=period,
        type={"name": name, "state": state, "completed": False},
    )
    [match] = parse(KIND, body)
    assert match.clock == expected


def detail(text: str, **flags: bool) -> dict[str, Any]:
    return {
        "type": {"id": "0", "text": text},
        "clock": {"value": 600.0, "displayValue": "10'"},
        "team": {"id": "206"},
        **flags,
    }


@pytest.mark.parametrize(
    ("raw", "expected", "shootout"),
    [
        (detail("Goal", scoringPlay=True), EventType.GOAL, False),
        (detail("Goal - Header", scoringPlay=True), EventType.GOAL, False),
        (detail("Goal - Volley"), EventType.GOAL, False),  # text alone
        (
            detail("Penalty - Scored", scoringPlay=True, penaltyKick=True),
            EventType.PENALTY_GOAL,
            False,
        ),
        (detail("Penalty - Missed", penaltyKick=True), EventType.MISSED_PENALTY, False),
        (detail("Penalty - Saved", penaltyKick=True), EventType.MISSED_PENALTY, False),
        (
            detail("Penalty - Scored", scoringPlay=True, penaltyKick=True, shootout=True),
            EventType.PENALTY_GOAL,
            True,
        ),
        (detail("Penalty - Missed", shootout=True), EventType.MISSED_PENALTY, True),
        (detail("Own Goal", scoringPlay=True, ownGoal=True), EventType.OWN_GOAL, False),
        (detail("Yellow Card", yellowCard=True), EventType.YELLOW, False),
        (detail("Red Card", redCard=True), EventType.RED, False),
        (detail("Red Card", redCard=True, yellowCard=True), EventType.SECOND_YELLOW, False),
        (detail("Second Yellow Card", redCard=True), EventType.SECOND_YELLOW, False),
        (detail("Substitution"), EventType.SUBSTITUTION, False),
        (detail("Offside"), EventType.TEXT, False),
    ],
)
def test_detail_vocabulary(
    payload: Payload, parse: Parse, raw: dict[str, Any], expected: EventType, shootout: bool
) -> None:
    body = payload(KIND, SAMPLE)
    body["events"] = body["events"][:1]
    body["events"][0]["competitions"][0]["details"] = [raw]
    [match] = parse(KIND, body)
    [event] = match.events
    assert (event.type, event.shootout, event.side, event.minute) == (
        expected,
        shootout,
        "home",
        10,
    )


@pytest.mark.parametrize(
    ("score", "expected"),
    [("3", 3), (" 2 ", 2), (1, 1), ({"value": 2.0, "displayValue": "2"}, 2), ("", None)],
)
def test_scores_arrive_as_strings(
    payload: Payload, parse: Parse, score: object, expected: int | None
) -> None:
    body = payload(KIND, SAMPLE)
    body["events"][0]["competitions"][0]["competitors"][0]["score"] = score
    canada = parse(KIND, body)[0]
    assert canada.home_score == expected


@pytest.mark.parametrize(
    ("mutate", "path", "problem"),
    [
        (
            lambda c: c["competitors"][0].update(score="x"),
            "events[0].competitions[0].competitors[0].score",
            "got str 'x'",
        ),
        (
            lambda c: c["competitors"][1].update(homeAway="home"),
            "events[0].competitions[0].competitors",
            "a home and an away",
        ),
        (
            lambda c: c["details"][0].update(team={"id": "999"}),
            "events[0].competitions[0].details[0].team.id",
            "neither home",
        ),
        (
            lambda c: c["details"][0]["clock"].update(displayValue="?", value="soon"),
            "events[0].competitions[0].details[0].clock.value",
            "expected number",
        ),
        (
            lambda c: c["competitors"][0]["team"].pop("id"),
            "events[0].competitions[0].competitors[0].team.id",
            "missing",
        ),
        (lambda c: c.update(status=[]), "events[0].competitions[0].status", "expected object"),
        # a negative minute is a bad value, never "no minute, use the seconds"
        (
            lambda c: c["details"][0]["clock"].update(displayValue="-5'"),
            "events[0].competitions[0].details[0].clock.displayValue",
            'expected a minute in 0..200, got str "-5\'"',
        ),
        (
            lambda c: c["details"][0]["clock"].update(displayValue="?", value=-300.0),
            "events[0].competitions[0].details[0].clock.value",
            "expected a clock in seconds >= 0, got -300",
        ),
    ],
)
def test_malformed_events_name_the_field(
    payload: Payload, parse: Parse, mutate: Any, path: str, problem: str
) -> None:
    body = payload(KIND, SAMPLE)
    mutate(body["events"][0]["competitions"][0])
    with pytest.raises(PayloadError) as caught:
        parse(KIND, body)
    assert (caught.value.provider, caught.value.path) == ("espn", path)
    assert problem in caught.value.problem


@pytest.mark.parametrize(
    ("body", "path"),
    [({"leagues": []}, "$"), ({"events": "none"}, "events"), ({"events": [{"id": "1"}]}, None)],
)
def test_unexpected_documents(parse: Parse, body: Any, path: str | None) -> None:
    with pytest.raises(PayloadError) as caught:
        parse(KIND, body)
    if path is not None:
        assert caught.value.path == path


def test_requests() -> None:
    every = EspnAdapter(FeedConfig(name="espn", kind=KIND))
    world_cup = EspnAdapter(FeedConfig(name="espn", kind=KIND, competitions=("fifa.world",)))
    two = EspnAdapter(FeedConfig(name="espn", kind=KIND, competitions=("eng.1", "esp.1")))
    today = every.today_request(date(2026, 6, 12))
    assert today.path == "/apis/site/v2/sports/soccer/all/scoreboard"
    assert today.params == (("dates", "20260612"),)
    assert world_cup.today_request(date(2026, 6, 12)).path == (
        "/apis/site/v2/sports/soccer/fifa.world/scoreboard"
    )
    assert two.league == "all"
    one = world_cup.match_request("760416")
    assert (one.path, one.params) == (
        "/apis/site/v2/sports/soccer/fifa.world/summary",
        (("event", "760416"),),
    )
    assert every.live_request() is None
    assert every.auth("ignored") == ({}, {})
    assert every.base_url == "https://site.api.espn.com"
