"""football-data.org v4: the recorded sample, derived quirk payloads, fragment tables."""

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
from providers.football_data import FootballDataAdapter
from tests.providers.conftest import Parse, recorded_response

KIND = "football-data"
SAMPLE = "footballdata-v4-matches-today.recorded.json"
Payload = Callable[[str, str], Any]


def adapter(*competitions: str) -> FootballDataAdapter:
    return FootballDataAdapter(FeedConfig(name="fd", kind=KIND, competitions=competitions))


# -- the verbatim recorded sample ---------------------------------------------------------


def test_recorded_today_sample_normalizes_every_match() -> None:
    observations = adapter().parse(recorded_response(KIND, SAMPLE))
    assert len(observations) == 34
    assert {o.status for o in observations} == {MatchStatus.SCHEDULED}
    assert {o.provider_status for o in observations} == {"TIMED"}
    assert all(o.home_score is None and o.away_score is None for o in observations)
    assert all(o.events == () and not o.events_complete for o in observations)
    assert all(o.clock == Clock() and o.breakdown == Breakdown() for o in observations)
    assert all(o.start_time.tzinfo is UTC for o in observations)
    assert Counter(o.competition.provider_id for o in observations if o.competition) == {
        "2015": 7,  # Ligue 1
        "2013": 5,  # Brasileirão
        "2019": 4,  # Serie A
        "2014": 4,
        "2003": 4,
        "2016": 3,
        "2017": 3,
        "2021": 2,
        "2002": 2,
    }


def test_recorded_sample_concrete_match() -> None:
    by_id = {o.provider_match_id: o for o in adapter().parse(recorded_response(KIND, SAMPLE))}
    united = by_id["416329"]
    assert united.provider == "football-data"
    assert united.sport == "football"
    assert united.home == TeamRef("66", "Manchester United FC", "Man United", "MUN")
    assert united.away == TeamRef("57", "Arsenal FC", "Arsenal", "ARS")
    assert united.competition == CompetitionRef("2021", "Premier League", "England")
    assert united.start_time == datetime(2022, 9, 4, 15, 30, tzinfo=UTC)
    # lastUpdated "2022-09-04T01:32:00Z" is Berlin wall time (CEST, UTC+2)
    assert united.provider_updated_at == datetime(2022, 9, 3, 23, 32, tzinfo=UTC)
    rkc = by_id["415963"]
    assert (rkc.home.name, rkc.away.name) == ("RKC Waalwijk", "SBV Excelsior")
    assert rkc.start_time == datetime(2022, 9, 4, 10, 15, tzinfo=UTC)
    # "11:26:08Z" in a response dated 09:30:13 GMT: read as Berlin it is 09:26:08 UTC
    assert rkc.provider_updated_at == datetime(2022, 9, 4, 9, 26, 8, tzinfo=UTC)
    last = by_id["390152"]
    assert (last.home.name, last.away.name) == ("Cuiabá EC", "São Paulo FC")
    assert last.start_time == datetime(2022, 9, 4, 22, 0, tzinfo=UTC)


def test_no_update_stamp_lies_in_the_future_of_the_response() -> None:
    response = recorded_response(KIND, SAMPLE)
    stamps = [o.provider_updated_at for o in adapter().parse(response)]
    assert all(s is not None and s <= response.fetched_at for s in stamps)


# -- derived payloads ------------------------------------------------------------------


def test_single_match_after_shootout(payload: Payload, parse: Parse) -> None:
    body = payload(KIND, "match-444001-shootout.json")
    fetched = datetime(2024, 3, 14, 1, 0, tzinfo=UTC)
    [match] = parse(KIND, body, purpose="match", fetched_at=fetched)
    assert match.provider_match_id == "444001"
    assert match.status is MatchStatus.FINISHED
    assert (match.home_score, match.away_score) == (2, 1)  # fullTime says 5-3
    assert match.breakdown == Breakdown(
        half_time=ScoreLine(1, 1),
        regular_time=ScoreLine(2, 1),
        extra_time=ScoreLine(0, 0),
        penalties=ScoreLine(3, 2),
    )
    assert match.clock == Clock(120, 3, Period.FULL_TIME)
    # "2024-03-14T00:20:01Z" is Berlin winter time (CET, UTC+1)
    assert match.provider_updated_at == datetime(2024, 3, 13, 23, 20, 1, tzinfo=UTC)
    assert match.events_complete
    assert len(match.events) == 18
    kinds = Counter((e.type, e.shootout) for e in match.events)
    assert kinds == {
        (EventType.GOAL, False): 3,
        (EventType.YELLOW, False): 4,
        (EventType.SECOND_YELLOW, False): 1,
        (EventType.SUBSTITUTION, False): 1,
        (EventType.PENALTY_GOAL, True): 5,
        (EventType.MISSED_PENALTY, True): 4,
    }
    kicks = [e for e in match.events if e.shootout]
    assert Counter(e.side for e in kicks if e.type is EventType.PENALTY_GOAL) == {
        "home": 3,
        "away": 2,
    }
    first_goal = match.events[0]
    assert (first_goal.minute, first_goal.side, first_goal.actor) == (
        33,
        "away",
        "Federico Dimarco",
    )
    assert first_goal.metadata == {"assist": "Nicolò Barella"}
    assert first_goal.key == "football-data:444001:goal:away:33:0"
    booking = next(e for e in match.events if e.added_time == 2)
    assert (booking.type, booking.minute, booking.actor) == (
        EventType.YELLOW,
        105,
        "Francesco Acerbi",
    )
    sub = next(e for e in match.events if e.type is EventType.SUBSTITUTION)
    assert sub.actor == "Rodrigo Riquelme"
    assert sub.metadata == {"player_in": "Rodrigo Riquelme", "player_out": "Samuel Lino"}
    second = next(e for e in match.events if e.type is EventType.SECOND_YELLOW)
    assert (second.minute, second.side, second.actor) == (118, "away", "Yann Bisseck")
    keys = [e.key for e in match.events]
    assert len(set(keys)) == len(keys)
    assert "football-data:444001:penalty_goal.so:home:-:2" in keys


def test_competition_list_with_every_phase(payload: Payload, parse: Parse) -> None:
    body = payload(KIND, "competition-2013-matches-mixed.json")
    fetched = datetime(2023, 6, 25, 20, 50, tzinfo=UTC)
    by_id = {o.provider_match_id: o for o in parse(KIND, body, fetched_at=fetched)}
    assert set(by_id) == {"439001", "439002", "439003", "439004", "439005"}  # 439006: teams TBD
    live = by_id["439001"]
    assert (live.status, live.home_score, live.away_score) == (MatchStatus.LIVE, 2, 1)
    assert live.clock == Clock(90, 3, Period.SECOND_HALF)  # minute 93, no injuryTime
    assert live.provider_updated_at == datetime(2023, 6, 25, 19, 40, tzinfo=UTC)
    paused = by_id["439002"]
    assert paused.status is MatchStatus.HALFTIME
    assert paused.clock == Clock(45, 2, Period.HALFTIME)
    extra = by_id["439003"]
    assert (extra.status, extra.home_score, extra.away_score) == (MatchStatus.EXTRA_TIME, 2, 1)
    assert extra.breakdown.regular_time == ScoreLine(1, 1)
    assert extra.breakdown.extra_time == ScoreLine(1, 0)
    assert extra.clock == Clock(104, None, Period.EXTRA_TIME)
    postponed = by_id["439004"]
    assert postponed.status is MatchStatus.POSTPONED
    assert (postponed.home_score, postponed.away_score, postponed.clock) == (None, None, Clock())
    awarded = by_id["439005"]
    assert (awarded.status, awarded.provider_status) == (MatchStatus.FINISHED, "AWARDED")
    assert awarded.breakdown.regular_time == ScoreLine(0, 3)


# -- fragment tables -------------------------------------------------------------------


def one_match(payload: Payload, **changes: Any) -> dict[str, Any]:
    """The sample's first match with ``changes`` applied, as a one-match list."""
    body = payload(KIND, SAMPLE)
    match = body["matches"][0]
    match.update(changes)
    return {"matches": [match]}


@pytest.mark.parametrize(
    ("code", "duration", "expected"),
    [
        ("SCHEDULED", "REGULAR", MatchStatus.SCHEDULED),
        ("TIMED", "REGULAR", MatchStatus.SCHEDULED),
        ("IN_PLAY", "REGULAR", MatchStatus.LIVE),
        ("LIVE", "REGULAR", MatchStatus.LIVE),
        ("PAUSED", "REGULAR", MatchStatus.HALFTIME),
        ("PAUSED", "EXTRA_TIME", MatchStatus.EXTRA_TIME),
        ("PAUSED", "PENALTY_SHOOTOUT", MatchStatus.EXTRA_TIME),
        ("EXTRA_TIME", "EXTRA_TIME", MatchStatus.EXTRA_TIME),
        ("PENALTY_SHOOTOUT", "PENALTY_SHOOTOUT", MatchStatus.PENALTIES),
        ("FINISHED", "REGULAR", MatchStatus.FINISHED),
        ("AWARDED", "REGULAR", MatchStatus.FINISHED),
        ("SUSPENDED", "REGULAR", MatchStatus.SUSPENDED),
        ("POSTPONED", "REGULAR", MatchStatus.POSTPONED),
        ("CANCELLED", "REGULAR", MatchStatus.CANCELLED),
    ],
)
def test_status_vocabulary(
    payload: Payload, parse: Parse, code: str, duration: str, expected: MatchStatus
) -> None:
    body = one_match(payload, status=code, score={"duration": duration, "fullTime": {}})
    [match] = parse(KIND, body)
    assert (match.status, match.provider_status) == (expected, code)


@pytest.mark.parametrize("code", ["HALF_TIME", "", 7, None])
def test_unknown_status_is_a_payload_error(payload: Payload, parse: Parse, code: object) -> None:
    with pytest.raises(PayloadError) as caught:
        parse(KIND, one_match(payload, status=code))
    assert (caught.value.provider, caught.value.path) == ("football-data", "matches[0].status")


def line(home: object, away: object) -> dict[str, object]:
    return {"home": home, "away": away}


@pytest.mark.parametrize(
    ("score", "expected", "penalties"),
    [
        (
            {
                "duration": "PENALTY_SHOOTOUT",
                "fullTime": line(5, 6),
                "regularTime": line(1, 1),
                "extraTime": line(0, 0),
                "penalties": line(4, 5),
            },
            (1, 1),
            ScoreLine(4, 5),
        ),
        (  # no regularTime/extraTime: take the kicks back out of fullTime
            {"duration": "PENALTY_SHOOTOUT", "fullTime": line(5, 6), "penalties": line(4, 5)},
            (1, 1),
            ScoreLine(4, 5),
        ),
        (  # the 2022 World Cup final: 3-3 after extra time, 4-2 on penalties
            {
                "duration": "PENALTY_SHOOTOUT",
                "fullTime": line(7, 5),
                "regularTime": line(2, 2),
                "extraTime": line(1, 1),
                "penalties": line(4, 2),
            },
            (3, 3),
            ScoreLine(4, 2),
        ),
        (
            {
                "duration": "EXTRA_TIME",
                "fullTime": line(3, 2),
                "regularTime": line(2, 2),
                "extraTime": line(1, 0),
            },
            (3, 2),
            None,
        ),
        ({"duration": "REGULAR", "fullTime": line(2, 0)}, (2, 0), None),
        ({"duration": "REGULAR", "fullTime": line("2", "")}, (2, None), None),
        ({"duration": "REGULAR", "fullTime": line(None, None)}, (None, None), None),
    ],
)
def test_shootout_score_arithmetic(
    payload: Payload,
    parse: Parse,
    score: dict[str, Any],
    expected: tuple[int | None, int | None],
    penalties: ScoreLine | None,
) -> None:
    [match] = parse(KIND, one_match(payload, status="FINISHED", score=score))
    assert (match.home_score, match.away_score) == expected
    assert match.breakdown.penalties == penalties


def test_penalties_exceeding_full_time_are_refused(payload: Payload, parse: Parse) -> None:
    score = {"duration": "PENALTY_SHOOTOUT", "fullTime": line(1, 1), "penalties": line(4, 5)}
    with pytest.raises(PayloadError) as caught:
        parse(KIND, one_match(payload, status="FINISHED", score=score))
    assert caught.value.path == "matches[0].score.fullTime"


@pytest.mark.parametrize(
    ("stamp", "fetched", "expected"),
    [
        ("2022-09-04T11:26:08Z", (2022, 9, 4, 9, 30), datetime(2022, 9, 4, 9, 26, 8, tzinfo=UTC)),
        ("2024-01-15T12:00:00Z", (2024, 1, 15, 12, 0), datetime(2024, 1, 15, 11, 0, tzinfo=UTC)),
        (
            "2022-09-04T11:26:08+00:00",
            (2022, 9, 4, 12, 0),
            datetime(2022, 9, 4, 11, 26, 8, tzinfo=UTC),
        ),
        ("2022-09-04T13:26:08Z", (2022, 9, 4, 9, 30), None),  # still in the future: untrusted
        (None, (2022, 9, 4, 9, 30), None),
    ],
)
def test_last_updated_is_berlin_wall_time(
    payload: Payload,
    parse: Parse,
    stamp: str | None,
    fetched: tuple[int, ...],
    expected: datetime | None,
) -> None:
    body = one_match(payload, lastUpdated=stamp)
    [match] = parse(KIND, body, fetched_at=datetime(*fetched, tzinfo=UTC))
    assert match.provider_updated_at == expected


@pytest.mark.parametrize(
    ("status", "minute", "injury", "expected"),
    [
        ("IN_PLAY", 23, None, Clock(23, None, Period.FIRST_HALF)),
        ("IN_PLAY", 45, 2, Clock(45, 2, Period.FIRST_HALF)),
        ("IN_PLAY", "90+6", None, Clock(90, 6, Period.SECOND_HALF)),
        ("IN_PLAY", 96, None, Clock(90, 6, Period.SECOND_HALF)),
        ("IN_PLAY", None, None, Clock()),
        ("PAUSED", "45", None, Clock(45, None, Period.HALFTIME)),
        ("EXTRA_TIME", 121, None, Clock(120, 1, Period.EXTRA_TIME)),
        ("FINISHED", 90, 4, Clock(90, 4, Period.FULL_TIME)),
        ("TIMED", 0, None, Clock()),
    ],
)
def test_clock_from_minute_and_injury_time(
    payload: Payload, parse: Parse, status: str, minute: object, injury: object, expected: Clock
) -> None:
    [match] = parse(KIND, one_match(payload, status=status, minute=minute, injuryTime=injury))
    assert match.clock == expected


@pytest.mark.parametrize(
    ("goals", "home", "away", "complete"),
    [
        ([], None, None, True),
        ([{"minute": 10, "type": "OWN", "team": {"id": 683}, "scorer": {"name": "X"}}], 1, 0, True),
        ([{"minute": 10, "type": "REGULAR", "team": {"id": 670}}], 1, 0, False),
    ],
)
def test_events_complete_only_when_goals_match_score(
    payload: Payload,
    parse: Parse,
    goals: list[dict[str, Any]],
    home: int | None,
    away: int | None,
    complete: bool,
) -> None:
    score = {"duration": "REGULAR", "fullTime": line(home, away)}
    [match] = parse(KIND, one_match(payload, status="IN_PLAY", score=score, goals=goals))
    assert match.events_complete is complete
    if goals and goals[0]["type"] == "OWN":
        assert match.events[0].type is EventType.OWN_GOAL
        assert match.events[0].metadata["player_side"] == "away"


@pytest.mark.parametrize(
    ("changes", "path", "problem"),
    [
        ({"homeTeam": None}, "matches[0].homeTeam", "expected a value, got null"),
        ({"utcDate": "tomorrow"}, "matches[0].utcDate", "ISO 8601"),
        ({"utcDate": "2022-09-04T10:15:00"}, "matches[0].utcDate", None),  # naive: UTC, fine
        ({"score": {"fullTime": line("x", 0)}}, "matches[0].score.fullTime.home", "got str 'x'"),
        ({"score": {"fullTime": line(-1, 0)}}, "matches[0].score.fullTime.home", "0..999"),
        ({"id": {"nested": 1}}, "matches[0].id", "expected an id"),
        ({"goals": [{"type": "WEIRD"}]}, "matches[0].goals[0].type", "unknown goal type"),
        ({"bookings": [{"card": "GREEN"}]}, "matches[0].bookings[0].card", "unknown card"),
        ({"goals": [{"team": {"id": 1}}]}, "matches[0].goals[0].team.id", "neither home"),
    ],
)
def test_malformed_matches_name_the_field(
    payload: Payload, parse: Parse, changes: dict[str, Any], path: str, problem: str | None
) -> None:
    body = one_match(payload, **changes)
    if problem is None:
        assert parse(KIND, body)
        return
    with pytest.raises(PayloadError) as caught:
        parse(KIND, body)
    assert caught.value.provider == "football-data"
    assert caught.value.path == path
    assert problem in caught.value.problem


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"matches": {"0": {}}}, "matches"),
        ({"message": "The resource you are looking for is restricted.", "errorCode": 403}, "$"),
        ({"something": "else"}, "$"),
        ([1, 2], "$"),
    ],
)
def test_unexpected_documents(parse: Parse, body: Any, path: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse(KIND, body)
    assert caught.value.path == path


def test_requests() -> None:
    plain, filtered = adapter(), adapter("PL", "CL")
    today = plain.today_request(date(2022, 9, 4))
    assert (today.purpose, today.path) == ("today", "/v4/matches")
    assert today.params == (("dateFrom", "2022-09-04"), ("dateTo", "2022-09-05"))
    assert filtered.today_request(date(2022, 9, 4)).params[-1] == ("competitions", "PL,CL")
    assert plain.live_request().params == (("status", "LIVE"),)
    one = plain.match_request("418515")
    assert (one.path, one.provider_match_id) == ("/v4/matches/418515", "418515")
    assert plain.auth("tok") == ({"X-Auth-Token": "tok"}, {})
    assert plain.default_budget_per_minute == 10
    assert plain.base_url == "https://api.football-data.org"
