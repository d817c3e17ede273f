"""API-Football v3: the live sample, a shoot-out, VAR/own goal/cards, fragment tables."""

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
from providers.api_football import ApiFootballAdapter
from providers.base import FeedConfig
from providers.errors import BudgetExhausted, CredentialsRejected, PayloadError
from tests.providers.conftest import Parse

KIND = "api-football"
SAMPLE = "apifootball-v3-fixtures-live.json"
SHOOTOUT = "fixture-cl-penalties.json"
QUIRKS = "fixture-var-own-goal-cards.json"
Payload = Callable[[str, str], Any]


# -- the verbatim live sample ---------------------------------------------------------


def test_live_sample_normalizes_every_fixture(payload: Payload, parse: Parse) -> None:
    observations = parse(KIND, payload(KIND, SAMPLE), purpose="live")
    assert [o.provider_match_id for o in observations] == [
        "1202873",
        "1310721",
        "1181341",
        "1214075",
        "1214076",
        "1246576",
        "1310660",
    ]
    assert {o.status for o in observations} == {MatchStatus.LIVE}
    assert [o.provider_status for o in observations] == ["1H", "1H", "2H", "2H", "2H", "2H", "2H"]
    assert [(o.home_score, o.away_score) for o in observations] == [
        (0, 0),
        (0, 1),
        (1, 0),
        (0, 0),
        (0, 3),
        (0, 0),
        (0, 0),
    ]
    assert [o.clock for o in observations] == [
        Clock(45, None, Period.FIRST_HALF),
        Clock(45, 1, Period.FIRST_HALF),
        Clock(58, None, Period.SECOND_HALF),
        Clock(71, None, Period.SECOND_HALF),
        Clock(77, None, Period.SECOND_HALF),
        Clock(72, None, Period.SECOND_HALF),
        Clock(52, None, Period.SECOND_HALF),
    ]
    assert [len(o.events) for o in observations] == [3, 1, 1, 3, 0, 6, 0]
    # 0-3 with no events listed: this feed's event list is not the whole story
    assert [o.events_complete for o in observations] == [True, True, True, True, False, True, True]
    assert all(o.provider_updated_at is None for o in observations)


def test_live_sample_concrete_fixture(payload: Payload, parse: Parse) -> None:
    first, second, *_, peru, _ = parse(KIND, payload(KIND, SAMPLE), purpose="live")
    assert first.home == TeamRef("3645", "Mixco")
    assert first.away == TeamRef("3657", "Cobán Imperial")
    assert first.competition == CompetitionRef("339", "Liga Nacional", "Guatemala")
    assert first.start_time == datetime(2024, 10, 23, 21, 0, tzinfo=UTC)
    assert first.breakdown == Breakdown(half_time=ScoreLine(0, 0))
    yellows = first.events
    assert [(e.type, e.minute, e.side, e.actor) for e in yellows] == [
        (EventType.YELLOW, 10, "away", None),  # null player id and name
        (EventType.YELLOW, 21, "home", "Y. Pozuelos"),
        (EventType.YELLOW, 33, "home", "F. Cavallo"),  # null player id, name given
    ]
    [goal] = second.events
    assert (goal.type, goal.minute, goal.side, goal.actor) == (EventType.GOAL, 22, "away", None)
    assert goal.key == "api-football:1310721:goal:away:22:0"
    kinds = Counter(e.type for e in peru.events)
    assert kinds == {EventType.YELLOW: 2, EventType.MISSED_PENALTY: 1, EventType.SUBSTITUTION: 3}
    missed = next(e for e in peru.events if e.type is EventType.MISSED_PENALTY)
    assert (missed.minute, missed.side, missed.actor) == (59, "away", "H. Zeta")
    sub = peru.events[3]
    assert (sub.minute, sub.side, sub.actor) == (60, "home", "J. Falconi")
    assert sub.metadata == {"player_out": "H. Rengifo", "player_in": "J. Falconi"}


def test_reparse_gives_identical_keys(payload: Payload, parse: Parse) -> None:
    body = payload(KIND, SAMPLE)
    first = [e.key for o in parse(KIND, body) for e in o.events]
    again = [e.key for o in parse(KIND, payload(KIND, SAMPLE)) for e in o.events]
    assert first == again
    assert len(set(first)) == len(first)


# -- derived payloads -------------------------------------------------------------------


def test_penalty_shootout_fixture(payload: Payload, parse: Parse) -> None:
    [match] = parse(KIND, payload(KIND, SHOOTOUT), purpose="match")
    assert (match.status, match.provider_status) == (MatchStatus.FINISHED, "PEN")
    assert (match.home.name, match.away.name) == ("Atletico Madrid", "Inter")
    assert (match.home_score, match.away_score) == (2, 1)
    assert match.breakdown == Breakdown(
        half_time=ScoreLine(1, 1),
        regular_time=ScoreLine(2, 1),
        extra_time=ScoreLine(0, 0),
        penalties=ScoreLine(3, 2),
    )
    assert match.clock == Clock(120, None, Period.FULL_TIME)
    assert match.start_time == datetime(2024, 3, 13, 20, 0, tzinfo=UTC)
    assert len(match.events) == 29
    kicks = [e for e in match.events if e.shootout]
    assert len(kicks) == 9
    assert {(e.minute) for e in kicks} == {120}
    assert sorted(e.added_time or 0 for e in kicks) == list(range(1, 10))
    scored = Counter(e.side for e in kicks if e.type is EventType.PENALTY_GOAL)
    missed = Counter(e.side for e in kicks if e.type is EventType.MISSED_PENALTY)
    assert (scored, missed) == ({"home": 3, "away": 2}, {"home": 1, "away": 3})
    assert kicks[0].key == "api-football:1149519:missed_penalty.so:away:120+9:0"
    assert match.events_complete  # shoot-out kicks are not match goals
    assert match.stats["home"]["Ball Possession"] == "47%"
    assert match.stats["away"]["expected_goals"] == "1.57"
    assert match.stats["away"]["Offsides"] is None


def test_var_own_goal_and_cards_fixture(payload: Payload, parse: Parse) -> None:
    [match] = parse(KIND, payload(KIND, QUIRKS), purpose="match")
    assert (match.home_score, match.away_score) == (1, 2)
    events = {(e.minute, e.added_time, e.type): e for e in match.events}
    cancelled = events[(23, None, EventType.GOAL)]
    assert cancelled.retracted and cancelled.actor == "J. Stones"
    decision = events[(25, None, EventType.VAR)]
    assert decision.metadata == {"var_outcome": "Goal cancelled", "retracts": cancelled.key}
    own = events[(31, None, EventType.OWN_GOAL)]
    assert (own.side, own.actor, own.metadata) == ("home", "Fernandinho", {"player_side": "away"})
    assert events[(44, None, EventType.MISSED_PENALTY)].side == "away"
    assert events[(67, None, EventType.SECOND_YELLOW)].actor == "Fred"
    assert events[(78, None, EventType.RED)].metadata == {"comments": "Violent conduct"}
    assert "retracts" not in events[(88, None, EventType.VAR)].metadata  # Penalty confirmed
    assert events[(90, None, EventType.PENALTY_GOAL)].actor == "Rodri"
    late = events[(90, 4, EventType.GOAL)]
    assert (late.actor, late.metadata) == ("P. Foden", {"assist": "R. Sterling"})
    twins = [e for e in match.events if e.minute == 10]
    assert [e.key for e in twins] == [
        "api-football:653808:yellow:home:10:0",
        "api-football:653808:yellow:home:10:1",
    ]
    assert match.events_complete  # retracted goal and missed penalty not counted


# -- fragment tables -------------------------------------------------------------------


def one_fixture(payload: Payload, name: str = SAMPLE, **fixture: Any) -> dict[str, Any]:
    body = payload(KIND, name)
    body["response"] = body["response"][:1]
    body["response"][0]["fixture"].update(fixture)
    return body


@pytest.mark.parametrize(
    ("short", "expected"),
    [
        ("TBD", MatchStatus.SCHEDULED),
        ("NS", MatchStatus.SCHEDULED),
        ("1H", MatchStatus.LIVE),
        ("HT", MatchStatus.HALFTIME),
        ("2H", MatchStatus.LIVE),
        ("ET", MatchStatus.EXTRA_TIME),
        ("BT", MatchStatus.EXTRA_TIME),
        ("P", MatchStatus.PENALTIES),
        ("SUSP", MatchStatus.SUSPENDED),
        ("INT", MatchStatus.SUSPENDED),
        ("FT", MatchStatus.FINISHED),
        ("AET", MatchStatus.FINISHED),
        ("PEN", MatchStatus.FINISHED),
        ("PST", MatchStatus.POSTPONED),
        ("CANC", MatchStatus.CANCELLED),
        ("ABD", MatchStatus.ABANDONED),
        ("AWD", MatchStatus.FINISHED),
        ("WO", MatchStatus.FINISHED),
        ("LIVE", MatchStatus.LIVE),
    ],
)
def test_status_vocabulary(
    payload: Payload, parse: Parse, short: str, expected: MatchStatus
) -> None:
    body = one_fixture(payload, status={"long": "x", "short": short, "elapsed": None})
    [match] = parse(KIND, body)
    assert (match.status, match.provider_status) == (expected, short)


@pytest.mark.parametrize("short", ["XX", "ht", "", None, 3])
def test_unknown_status_is_a_payload_error(payload: Payload, parse: Parse, short: object) -> None:
    body = one_fixture(payload, status={"short": short, "elapsed": 3})
    with pytest.raises(PayloadError) as caught:
        parse(KIND, body)
    assert caught.value.path == "response[0].fixture.status.short"


@pytest.mark.parametrize(
    ("short", "elapsed", "extra", "expected"),
    [
        ("1H", 45, 1, Clock(45, 1, Period.FIRST_HALF)),
        ("1H", 47, None, Clock(45, 2, Period.FIRST_HALF)),
        ("2H", 90, 6, Clock(90, 6, Period.SECOND_HALF)),
        ("2H", 93, None, Clock(90, 3, Period.SECOND_HALF)),
        ("2H", "77", None, Clock(77, None, Period.SECOND_HALF)),
        ("HT", 45, None, Clock(45, None, Period.HALFTIME)),
        ("ET", 105, 2, Clock(105, 2, Period.EXTRA_TIME)),
        ("BT", 90, None, Clock(90, None, None)),
        ("P", 120, None, Clock(120, None, Period.PENALTIES)),
        ("NS", None, None, Clock()),
        ("PST", 0, None, Clock()),
    ],
)
def test_clock_from_elapsed_and_extra(
    payload: Payload, parse: Parse, short: str, elapsed: object, extra: object, expected: Clock
) -> None:
    body = one_fixture(payload, status={"short": short, "elapsed": elapsed, "extra": extra})
    [match] = parse(KIND, body)
    assert match.clock == expected


def raw_event(
    type_: str,
    detail: str,
    comments: str | None = None,
    team: int = 3645,
    minute: int = 10,
    extra: int | None = None,
    player: tuple[int | None, str | None] = (None, None),
) -> dict[str, Any]:
    return {
        "time": {"elapsed": minute, "extra": extra},
        "team": {"id": team, "name": "x", "logo": None},
        "player": {"id": player[0], "name": player[1]},
        "assist": {"id": None, "name": None},
        "type": type_,
        "detail": detail,
        "comments": comments,
    }


@pytest.mark.parametrize(
    ("type_", "detail", "comments", "expected", "shootout"),
    [
        ("Goal", "Normal Goal", None, EventType.GOAL, False),
        ("Goal", "Own Goal", None, EventType.OWN_GOAL, False),
        ("Goal", "Penalty", None, EventType.PENALTY_GOAL, False),
        ("Goal", "Missed Penalty", None, EventType.MISSED_PENALTY, False),
        ("Goal", "Penalty", "Penalty Shootout", EventType.PENALTY_GOAL, True),
        ("Goal", "Missed Penalty", "Penalty Shootout", EventType.MISSED_PENALTY, True),
        ("Card", "Yellow Card", "Foul", EventType.YELLOW, False),
        ("Card", "Second Yellow card", None, EventType.SECOND_YELLOW, False),
        ("Card", "Red Card", None, EventType.RED, False),
        ("subst", "Substitution 3", None, EventType.SUBSTITUTION, False),
        ("Var", "Goal cancelled", None, EventType.VAR, False),
        ("Var", "Penalty confirmed", None, EventType.VAR, False),
        ("Injury", "Knock", None, EventType.TEXT, False),
    ],
)
def test_event_vocabulary(
    payload: Payload,
    parse: Parse,
    type_: str,
    detail: str,
    comments: str | None,
    expected: EventType,
    shootout: bool,
) -> None:
    body = one_fixture(payload)
    body["response"][0]["events"] = [raw_event(type_, detail, comments)]
    [match] = parse(KIND, body)
    [event] = match.events
    assert (event.type, event.shootout, event.message) == (expected, shootout, detail)


@pytest.mark.parametrize(
    ("goals", "events", "complete"),
    [
        ((0, 0), [raw_event("Goal", "Missed Penalty", team=3657)], True),
        ((0, 0), [raw_event("Goal", "Penalty", "Penalty Shootout", team=3657)], True),
        ((0, 1), [raw_event("Goal", "Own Goal", team=3657)], True),  # credited to the away side
        ((1, 0), [raw_event("Goal", "Missed Penalty", team=3645)], False),
    ],
)
def test_missed_penalties_and_kicks_are_not_goals(
    payload: Payload,
    parse: Parse,
    goals: tuple[int, int],
    events: list[dict[str, Any]],
    complete: bool,
) -> None:
    body = one_fixture(payload)
    body["response"][0]["goals"] = {"home": goals[0], "away": goals[1]}
    body["response"][0]["events"] = events
    [match] = parse(KIND, body)
    assert match.events_complete is complete


STONES, SAKA = (626, "J. Stones"), (1003, "B. Saka")


@pytest.mark.parametrize(
    ("events", "retracted"),
    [
        (  # the goal, then VAR naming the scorer
            [
                raw_event("Goal", "Normal Goal", minute=23, player=STONES),
                raw_event("Var", "Goal cancelled", minute=25, player=STONES),
            ],
            [True, False],
        ),
        (  # two goals of one side: the named scorer's goal goes
            [
                raw_event("Goal", "Normal Goal", minute=23, player=STONES),
                raw_event("Goal", "Normal Goal", minute=30, player=SAKA),
                raw_event("Var", "Goal Disallowed - offside", minute=31, player=STONES),
            ],
            [True, False, False],
        ),
        (  # no player named: the latest goal of that side before the decision
            [
                raw_event("Goal", "Normal Goal", minute=23, player=STONES),
                raw_event("Goal", "Normal Goal", minute=30, player=SAKA),
                raw_event("Var", "Goal cancelled", minute=32),
            ],
            [False, True, False],
        ),
        (  # listed before the goal it cancels, same minute
            [
                raw_event("Var", "Goal cancelled", minute=45, extra=2, player=SAKA),
                raw_event("Goal", "Normal Goal", minute=45, extra=2, player=SAKA),
            ],
            [False, True],
        ),
        (  # the other side's goal is untouched
            [
                raw_event("Goal", "Normal Goal", minute=23, team=3657, player=STONES),
                raw_event("Var", "Goal cancelled", minute=25, team=3645, player=STONES),
            ],
            [False, False],
        ),
        (
            [
                raw_event("Goal", "Penalty", minute=23, player=STONES),
                raw_event("Var", "Penalty confirmed", minute=22, player=STONES),
            ],
            [False, False],
        ),
    ],
)
def test_var_cancelled_goal_is_retracted(
    payload: Payload, parse: Parse, events: list[dict[str, Any]], retracted: list[bool]
) -> None:
    body = one_fixture(payload)
    body["response"][0]["events"] = events
    [match] = parse(KIND, body)
    assert [e.retracted for e in match.events] == retracted
    for decision in (e for e in match.events if "retracts" in e.metadata):
        assert any(e.key == decision.metadata["retracts"] and e.retracted for e in match.events)


@pytest.mark.parametrize(
    ("errors", "exception"),
    [
        ({"token": "Error/Missing application key."}, CredentialsRejected),
        ({"requests": "You have reached the request limit for the day"}, BudgetExhausted),
        ({"rateLimit": "Too many requests"}, BudgetExhausted),
        ({"date": "The Date field must contain a valid date"}, PayloadError),
        (["something went wrong"], PayloadError),
    ],
)
def test_errors_in_a_200_answer(
    payload: Payload, parse: Parse, errors: Any, exception: type[Exception]
) -> None:
    body = payload(KIND, SAMPLE)
    body["errors"], body["response"] = errors, []
    with pytest.raises(exception):
        parse(KIND, body)


@pytest.mark.parametrize(
    ("mutate", "path", "problem"),
    [
        (lambda b: b.update(response={}), "response", "expected list"),
        (
            lambda b: b["response"][0]["fixture"].pop("status"),
            "response[0].fixture.status",
            "missing",
        ),
        (
            lambda b: b["response"][0]["teams"]["home"].update(id=None),
            "response[0].teams.home.id",
            "null",
        ),
        (
            lambda b: b["response"][0]["goals"].update(home="x"),
            "response[0].goals.home",
            "got str 'x'",
        ),
        (
            lambda b: b["response"][0]["goals"].update(home=10**20),
            "response[0].goals.home",
            "0..999",
        ),
        (
            lambda b: b["response"][0]["events"][0]["team"].update(id=1),
            "response[0].events[0].team.id",
            "neither home",
        ),
        (
            lambda b: b["response"][0]["events"][1]["time"].update(elapsed="abc"),
            "response[0].events[1].time.elapsed",
            "expected int",
        ),
        (
            lambda b: b["response"][0]["fixture"].update(date="23/10/2024"),
            "response[0].fixture.date",
            "ISO",
        ),
    ],
)
def test_malformed_fixtures_name_the_field(
    payload: Payload, parse: Parse, mutate: Any, path: str, problem: str
) -> None:
    body = payload(KIND, SAMPLE)
    mutate(body)
    with pytest.raises(PayloadError) as caught:
        parse(KIND, body)
    assert (caught.value.provider, caught.value.path) == ("api-football", path)
    assert problem in caught.value.problem


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ({"date": "2024-10-23T23:00:00+02:00"}, datetime(2024, 10, 23, 21, 0, tzinfo=UTC)),
        ({"date": "2024-10-23T21:00:00"}, datetime(2024, 10, 23, 21, 0, tzinfo=UTC)),
        ({"date": None, "timestamp": 1729717200}, datetime(2024, 10, 23, 21, 0, tzinfo=UTC)),
    ],
)
def test_kickoff_is_utc(
    payload: Payload, parse: Parse, fixture: dict[str, Any], expected: datetime
) -> None:
    [match] = parse(KIND, one_fixture(payload, **fixture))
    assert match.start_time == expected
    assert match.start_time.tzinfo is UTC


def test_competitions_filter_lists_but_not_single_matches(payload: Payload, parse: Parse) -> None:
    body = payload(KIND, SAMPLE)
    listed = parse(KIND, body, competitions=("617",))
    assert [o.provider_match_id for o in listed] == ["1310721", "1310660"]
    by_name = parse(KIND, body, competitions=("liga nacional",))
    assert [o.provider_match_id for o in by_name] == ["1202873"]
    assert len(parse(KIND, body, purpose="match", competitions=("617",))) == 7


def test_requests() -> None:
    plain = ApiFootballAdapter(FeedConfig(name="af", kind=KIND))
    leagues = ApiFootballAdapter(FeedConfig(name="af", kind=KIND, competitions=("39", "61")))
    named = ApiFootballAdapter(FeedConfig(name="af", kind=KIND, competitions=("Premier League",)))
    assert plain.today_request(date(2024, 10, 23)).params == (("date", "2024-10-23"),)
    assert plain.today_request(date(2024, 10, 23)).path == "/fixtures"
    assert plain.live_request().params == (("live", "all"),)
    assert leagues.live_request().params == (("live", "39-61"),)
    assert named.live_request().params == (("live", "all"),)
    one = plain.match_request("1149519")
    assert (one.path, one.params, one.provider_match_id) == (
        "/fixtures",
        (("id", "1149519"),),
        "1149519",
    )
    assert plain.auth("k") == ({"x-apisports-key": "k"}, {})
