"""The pure rules of keeping score over REST (``pipeline.scoring``) and the
free-text kinds of the original API (``livescore.event_kinds``): tables, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from livescore.event_kinds import event_kind, period_of
from livescore.model import (
    Clock,
    EventType,
    MatchState,
    MatchStatus,
    NewEvent,
    Period,
    ScoreLine,
)
from pipeline import automation
from pipeline.scoring import (
    ScoreUpdate,
    ScoringRefused,
    commentary_patch,
    goal_for,
    status_clock,
    update_patch,
)
from pipeline.status_machine import IllegalTransition

S = MatchStatus
T0 = datetime(2026, 11, 29, 15, 0, tzinfo=UTC)


def state(
    status: MatchStatus = S.LIVE, score: tuple[int, int] = (0, 0), **kw: object
) -> MatchState:
    return MatchState(1, status, score[0], score[1], T0, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("old", "new", "clock"),
    [
        (S.SCHEDULED, S.LIVE, Clock(0, None, Period.FIRST_HALF)),
        (S.HALFTIME, S.LIVE, Clock(45, None, Period.SECOND_HALF)),
        (S.LIVE, S.HALFTIME, Clock(45, None, Period.HALFTIME)),
        (S.LIVE, S.EXTRA_TIME, Clock(90, None, Period.EXTRA_TIME)),
        (S.EXTRA_TIME, S.PENALTIES, Clock(118, None, Period.PENALTIES)),
        (S.LIVE, S.FINISHED, Clock(118, None, Period.FULL_TIME)),
        (S.SUSPENDED, S.LIVE, None),
        (S.LIVE, S.SUSPENDED, None),
    ],
)
def test_a_status_without_a_clock_moves_the_clock_with_it(
    old: MatchStatus, new: MatchStatus, clock: Clock | None
) -> None:
    assert status_clock(old, new, Clock(118, 2, Period.EXTRA_TIME)) == clock


def test_an_update_sets_what_it_names_and_keeps_the_rest() -> None:
    now = state(S.LIVE, (1, 1), clock=Clock(44, 1, Period.FIRST_HALF))
    patch = update_patch(now, ScoreUpdate(home_score=2), source="api", override=None)
    assert (patch.home_score, patch.away_score, patch.status, patch.clock) == (2, 1, None, None)
    patch = update_patch(now, ScoreUpdate(minute=45), source="api", override=None)
    assert patch.clock == Clock(45, None, Period.FIRST_HALF)  # a new minute alone: no added time
    patch = update_patch(now, ScoreUpdate(added_time=3), source="api", override=None)
    assert patch.clock == Clock(44, 3, Period.FIRST_HALF)
    half = update_patch(now, ScoreUpdate(status=S.HALFTIME), source="api", override=None)
    assert half.clock == Clock(45, None, Period.HALFTIME)
    assert half.breakdown is not None and half.breakdown.half_time == ScoreLine(1, 1)


def test_an_illegal_status_move_is_refused_with_the_moves_allowed() -> None:
    with pytest.raises(IllegalTransition, match="finished -> live"):
        update_patch(state(S.FINISHED), ScoreUpdate(status=S.LIVE), source="api", override=None)
    with pytest.raises(IllegalTransition, match="may move to"):
        update_patch(state(S.LIVE), ScoreUpdate(status=S.SCHEDULED), source="api", override=None)


@pytest.mark.parametrize(
    ("kind", "side", "shootout", "delta"),
    [
        (EventType.GOAL, "home", False, (1, 0)),
        (EventType.OWN_GOAL, "away", False, (0, 1)),  # counts for the side it names
        (EventType.PENALTY_GOAL, "away", False, (0, 1)),
        (EventType.PENALTY_GOAL, "away", True, (0, 0)),  # shoot-out kicks never count
        (EventType.MISSED_PENALTY, "home", False, (0, 0)),
        (EventType.YELLOW, "home", False, (0, 0)),
        (EventType.GOAL, None, False, (0, 0)),
    ],
)
def test_scoring_events_count_for_their_side(
    kind: EventType, side: str | None, shootout: bool, delta: tuple[int, int]
) -> None:
    assert goal_for(kind, side, shootout=shootout) == delta


def test_a_goal_moves_the_score_only_when_it_counts_and_a_retraction_takes_it_back() -> None:
    goal = NewEvent(EventType.GOAL, 10, side="home")
    counted = commentary_patch(state(score=(1, 1)), goal, source="api", counts=True)
    assert (counted.home_score, counted.away_score) == (2, 1)
    history = commentary_patch(state(score=(1, 1)), goal, source="api", counts=False)
    assert (history.home_score, history.away_score) == (None, None)
    var = NewEvent(EventType.VAR, 12)
    stored = {"id": 7, "type": "goal", "side": "away", "shootout": False}
    back = commentary_patch(state(score=(2, 1)), var, source="api", counts=True, retracted=stored)
    assert (back.home_score, back.away_score, back.retract_event_ids) == (2, 0, (7,))
    with pytest.raises(ScoringRefused, match="which team it counts for") as refused:
        commentary_patch(state(), NewEvent(EventType.GOAL, 3), source="api", counts=True)
    assert refused.value.field == "team"


def test_automation_stands_aside_once_a_scorer_set_the_status() -> None:
    scored = state(S.LIVE, status_source="api")
    assert automation.patch_for(S.FINISHED)(scored) is None
    assert automation.patch_for(S.FINISHED)(state(S.LIVE, status_source="automation")) is not None


@pytest.mark.parametrize(
    ("sent", "kind", "kept"),
    [
        (None, EventType.TEXT, None),
        ("goal", EventType.GOAL, None),
        ("GOAL", EventType.GOAL, "GOAL"),
        ("Yellow-Card", EventType.YELLOW, "Yellow-Card"),
        ("corner", EventType.TEXT, "corner"),
    ],
)
def test_free_text_kinds_map_and_keep_what_was_sent(
    sent: str | None, kind: EventType, kept: str | None
) -> None:
    assert event_kind(sent) == (kind, kept)


def test_period_numbers_map_onto_clock_periods() -> None:
    assert [period_of(n) for n in (1, 2, 3, 4, 5)] == [
        Period.FIRST_HALF,
        Period.SECOND_HALF,
        Period.EXTRA_TIME,
        Period.EXTRA_TIME,
        Period.PENALTIES,
    ]
    assert period_of("2") is Period.SECOND_HALF and period_of("HT") is Period.HALFTIME
