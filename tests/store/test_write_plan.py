"""The write path's pure core, without PostgreSQL: what a patch changes on a
match's state, in which order, with which seqs (``store.write_plan.plan``)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livescore.matchclock import clock_document
from livescore.model import (
    OVERRIDE_SOURCE,
    RELEASED_SOURCE,
    Breakdown,
    Clock,
    MatchPatch,
    MatchState,
    MatchStatus,
    OverrideInfo,
    Period,
    ScoreLine,
)
from store.write_plan import merged_override, plan

NOW = datetime(2026, 11, 29, 15, 0, tzinfo=UTC)
KICKOFF = datetime(2026, 11, 29, 14, 0, tzinfo=UTC)
STATE = MatchState(
    id=7,
    status=MatchStatus.LIVE,
    home_score=1,
    away_score=0,
    start_time=KICKOFF,
    seq=10,
    clock=Clock(30, None, Period.FIRST_HALF),
)
OVERRIDE = OverrideInfo(who="ops", reason="feed stuck", since=NOW, home_score=2, away_score=2)


def kinds(patch: MatchPatch, state: MatchState = STATE) -> list[tuple[int, str]]:
    return [(c.seq, c.type) for c in plan(state, patch, NOW).changes]


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        (MatchPatch(source="f"), []),
        (MatchPatch(source="f", home_score=1, away_score=0), []),  # the same score
        (MatchPatch(source="f", status=MatchStatus.LIVE), []),
        (MatchPatch(source="f", clock=Clock(30, None, Period.FIRST_HALF)), []),
        (MatchPatch(source="f", home_score=2, away_score=0), [(11, "score:update")]),
        (MatchPatch(source="f", clock=Clock(31, None, Period.FIRST_HALF)), [(11, "score:update")]),
        (MatchPatch(source="f", stats={"corners": 3}), [(11, "score:update")]),
        (MatchPatch(source="f", status=MatchStatus.HALFTIME), [(11, "match:status")]),
        (MatchPatch(source="f", start_time=KICKOFF + timedelta(hours=1)), [(11, "match:update")]),
        (MatchPatch(source="f", clear_override=True), []),  # nothing to clear
        (MatchPatch(source="f", group="Group B"), [(11, "match:update")]),
        (
            MatchPatch(
                source="f",
                home_score=2,
                away_score=0,
                status=MatchStatus.HALFTIME,
                override=OVERRIDE,
            ),
            [(11, "score:update"), (12, "match:status"), (13, "match:update")],
        ),
    ],
    ids=[
        "empty", "same-score", "same-status", "same-clock", "goal", "clock-ticks", "stats",
        "halftime", "kickoff-moved", "clear-nothing", "group-named",
        "score-status-override-in-order",
    ],
)  # fmt: skip
def test_a_patch_plans_only_what_it_changes_in_the_contract_order(
    patch: MatchPatch, expected: list[tuple[int, str]]
) -> None:
    assert kinds(patch) == expected


def test_events_come_first_and_numbering_continues_after_them() -> None:
    events = (("commentary:new", {"id": 1}), ("commentary:update", {"id": 2}))
    planned = plan(STATE, MatchPatch(source="f", home_score=2, away_score=0), NOW, events)
    assert [(c.seq, c.type) for c in planned.changes] == [
        (11, "commentary:new"),
        (12, "commentary:update"),
        (13, "score:update"),
    ]
    assert planned.sets["seq"] == 13 and planned.sets["updated_at"] == NOW


def test_a_score_change_carries_the_whole_scoreline_and_records_its_source() -> None:
    planned = plan(STATE, MatchPatch(source="fd", home_score=1, away_score=1), NOW)
    (change,) = planned.changes
    assert change.payload == {
        "homeScore": 1,
        "awayScore": 1,
        "breakdown": Breakdown().to_json(),
        "clock": clock_document(STATE.clock, None),
    }
    assert planned.sets["score_source"] == "fd"
    assert (planned.sets["home_score"], planned.sets["away_score"]) == (1, 1)


def test_finishing_stamps_finished_at_and_reports_the_previous_status() -> None:
    planned = plan(STATE, MatchPatch(source="auto", status=MatchStatus.FINISHED), NOW)
    (change,) = planned.changes
    assert change.payload["status"] == "finished" and change.payload["previous"] == "live"
    assert planned.sets["finished_at"] == NOW and planned.sets["status_source"] == "auto"


def test_clearing_an_override_releases_what_it_pinned_to_the_feeds() -> None:
    pinned = dataclasses.replace(
        STATE, override=OVERRIDE, score_source=OVERRIDE_SOURCE, status_source="fd"
    )
    planned = plan(pinned, MatchPatch(source=OVERRIDE_SOURCE, clear_override=True), NOW)
    assert [c.payload for c in planned.changes] == [{"override": None}]
    assert planned.delete_override and planned.override is None
    assert planned.sets["score_source"] == RELEASED_SOURCE
    assert "status_source" not in planned.sets


def test_an_override_over_another_keeps_what_the_new_one_leaves_unpinned() -> None:
    status_only = OverrideInfo(
        who="b", reason="floodlights", since=NOW, status=MatchStatus.SUSPENDED
    )
    merged = merged_override(OVERRIDE, status_only)
    assert (merged.home_score, merged.away_score, merged.status) == (2, 2, MatchStatus.SUSPENDED)
    assert (merged.who, merged.reason) == ("b", "floodlights")
    planned = plan(
        dataclasses.replace(STATE, override=OVERRIDE), MatchPatch("o", override=status_only), NOW
    )
    assert planned.override == merged
    assert planned.changes[-1].payload == {"override": merged.to_json()}


# -- properties ------------------------------------------------------------------------

scores = st.integers(min_value=0, max_value=20)
lines = st.builds(ScoreLine, scores, scores)
clocks = st.builds(
    Clock,
    st.none() | st.integers(min_value=0, max_value=120),
    st.none() | st.integers(min_value=0, max_value=15),
    st.none() | st.sampled_from(Period),
)
states = st.builds(
    MatchState,
    id=st.just(1),
    status=st.sampled_from(MatchStatus),
    home_score=scores,
    away_score=scores,
    start_time=st.just(KICKOFF),
    seq=st.integers(min_value=0, max_value=10_000),
    breakdown=st.builds(Breakdown, st.none() | lines, st.none() | lines),
    clock=clocks,
    stats=st.dictionaries(st.sampled_from(["corners", "shots"]), scores, max_size=2),
)


@st.composite
def patches(draw: st.DrawFn) -> MatchPatch:
    score = draw(st.none() | st.tuples(scores, scores))
    return MatchPatch(
        source=draw(st.sampled_from(["fd", "espn", "api"])),
        status=draw(st.none() | st.sampled_from(MatchStatus)),
        home_score=score[0] if score else None,
        away_score=score[1] if score else None,
        breakdown=draw(st.none() | st.builds(Breakdown, st.none() | lines)),
        clock=draw(st.none() | clocks),
        stats=draw(st.none() | st.dictionaries(st.just("corners"), scores, max_size=1)),
        start_time=draw(st.none() | st.just(KICKOFF + timedelta(minutes=30))),
        stage=draw(st.sampled_from([None, "group_stage"])),
        group=draw(st.sampled_from([None, "Group A"])),
    )


def applied(state: MatchState, sets: dict[str, Any]) -> MatchState:
    """The state after the planned row update (what the next read would see)."""
    period = sets.get("clock_period", state.clock.period)
    clock = Clock(
        sets.get("clock_minute", state.clock.minute),
        sets.get("clock_added", state.clock.added_time),
        Period(period) if period else None,
    )
    return dataclasses.replace(
        state,
        status=MatchStatus(sets.get("status", state.status)),
        home_score=sets.get("home_score", state.home_score),
        away_score=sets.get("away_score", state.away_score),
        start_time=sets.get("start_time", state.start_time),
        seq=sets.get("seq", state.seq),
        breakdown=Breakdown.from_json(sets["breakdown"])
        if "breakdown" in sets
        else state.breakdown,
        clock=clock,
        stats=sets.get("stats", state.stats),
        stage=sets.get("stage", state.stage),
        group=sets.get("group_name", state.group),
    )


def test_stage_and_group_go_to_their_columns_and_the_match_update() -> None:
    planned = plan(STATE, MatchPatch(source="espn", stage="group_stage", group="Group B"), NOW)
    assert planned.sets["stage"] == "group_stage" and planned.sets["group_name"] == "Group B"
    (change,) = planned.changes
    assert change.payload == {"stage": "group_stage", "group": "Group B"}
    # a patch without them leaves them alone
    grouped = dataclasses.replace(STATE, stage="group_stage", group="Group B")
    assert (
        plan(grouped, MatchPatch(source="tsdb", home_score=2, away_score=0), NOW).sets.keys()
        & {
            "stage",
            "group_name",
        }
        == set()
    )


@given(state=states, patch=patches())
def test_seqs_are_consecutive_after_the_current_one_and_the_row_takes_the_last(
    state: MatchState, patch: MatchPatch
) -> None:
    planned = plan(state, patch, NOW)
    seqs = [c.seq for c in planned.changes]
    assert seqs == list(range(state.seq + 1, state.seq + 1 + len(seqs)))
    assert planned.sets.get("seq") == (seqs[-1] if seqs else None)
    order = ["score:update", "match:status", "match:update"]
    assert [c.type for c in planned.changes] == sorted(
        (c.type for c in planned.changes), key=order.index
    )


@given(state=states, patch=patches())
def test_applying_a_plan_then_planning_the_same_patch_again_changes_nothing(
    state: MatchState, patch: MatchPatch
) -> None:
    """Idempotence: a re-poll that reports the same thing writes nothing."""
    after = applied(state, plan(state, patch, NOW).sets)
    assert plan(after, patch, NOW).empty
