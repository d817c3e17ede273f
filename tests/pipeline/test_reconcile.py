"""Reconciliation, one table test per rule (see pipeline/reconcile.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from livescore.errors import ConfigError
from livescore.model import (
    RELEASED_SOURCE,
    Breakdown,
    Clock,
    EventType,
    MatchPatch,
    MatchState,
    MatchStatus,
    Period,
    ScoreLine,
    Side,
)
from pipeline.patching import apply_events, apply_patch
from pipeline.reconcile import ProviderView, ReconcilePolicy, reconcile, settle
from tests.pipeline.factories import KICKOFF, NOW, event, override, state, stored, view

S = MatchStatus
SIDES: tuple[Side, ...] = ("home", "away", "home")
MIN = timedelta(minutes=1)
FINISHED_AT = KICKOFF + timedelta(minutes=115)


def score_of(patch: MatchPatch) -> tuple[int | None, int | None]:
    return (patch.home_score, patch.away_score)


# -- trust and freshness -------------------------------------------------------------------


def test_two_providers_disagree_the_more_trusted_wins() -> None:
    views = [view("b", 2, home=2), view("a", 1, home=1)]
    d = reconcile(state(), views, NOW)
    assert d.authority == "a"
    assert d.patch is not None and d.patch.source == "a"
    assert score_of(d.patch) == (1, 0)
    assert d.rejected == () and not d.stale


def test_ties_go_to_the_fresher_view_then_the_feed_name() -> None:
    fresher = reconcile(state(), [view("a", 1, home=1, age=MIN), view("b", 1, home=2)], NOW)
    assert fresher.authority == "b"
    by_name = reconcile(state(), [view("b", 1, home=2), view("a", 1, home=1)], NOW)
    assert by_name.authority == "a"


def test_when_the_authority_goes_stale_the_next_fresh_one_takes_over() -> None:
    views = [view("a", 1, home=1, age=4 * MIN), view("b", 2, home=2, age=MIN)]
    d = reconcile(state(), views, NOW)
    assert d.authority == "b"
    assert d.patch is not None and score_of(d.patch) == (2, 0)
    assert not d.stale


def test_a_newer_view_of_the_same_feed_replaces_the_older() -> None:
    views = [view("a", 1, home=1, age=2 * MIN), view("a", 1, home=2)]
    d = reconcile(state(), views, NOW)
    assert d.patch is not None and score_of(d.patch) == (2, 0)


def test_live_match_with_no_fresh_view_is_flagged_stale_and_left_alone() -> None:
    d = reconcile(state(home=1), [view("a", 1, home=3, age=10 * MIN)], NOW)
    assert d.stale and d.patch is None and d.authority is None


@pytest.mark.parametrize(
    ("status", "views"),
    [
        (S.LIVE, []),  # no provider coverage: status automation drives it
        (S.SCHEDULED, [view("a", 1, S.SCHEDULED, None, None, age=10 * MIN)]),
        (S.FINISHED, [view("a", 1, S.FINISHED, age=10 * MIN)]),
        (S.LIVE, [view("a", 1, age=10 * MIN), view("b", 5, age=MIN)]),
    ],
)
def test_not_stale(status: MatchStatus, views: list[ProviderView]) -> None:
    assert not reconcile(state(status), views, NOW).stale


def test_idle_matches_accept_older_views() -> None:
    later = KICKOFF + timedelta(days=1)
    s = state(S.SCHEDULED)
    d = reconcile(s, [view("a", 1, S.SCHEDULED, None, None, start_time=later, age=20 * MIN)], NOW)
    assert d.patch is not None and d.patch.start_time == later
    too_old = [view("a", 1, S.SCHEDULED, None, None, start_time=later, age=40 * MIN)]
    assert reconcile(s, too_old, NOW).patch is None


def test_a_feed_saying_live_makes_the_match_hot() -> None:
    # a twenty-minute-old "scheduled" from the trusted feed no longer speaks for it
    views = [view("a", 1, S.SCHEDULED, None, None, age=20 * MIN), view("b", 2, S.LIVE)]
    d = reconcile(state(S.SCHEDULED), views, NOW)
    assert d.authority == "b" and d.patch is not None and d.patch.status is S.LIVE


# -- status --------------------------------------------------------------------------------


def test_illegal_move_finished_to_live_is_rejected_and_recorded() -> None:
    s = state(S.FINISHED, 2, 1, score_source="a")
    now = FINISHED_AT + timedelta(minutes=5)
    d = reconcile(s, [view("a", 1, S.LIVE, 2, 1, now=now)], now, finished_at=FINISHED_AT)
    assert d.patch is None
    assert [(r.feed, r.code) for r in d.rejected] == [("a", "illegal_status")]
    assert "finished -> live" in d.rejected[0].reason


def test_illegal_view_is_refused_whole_and_the_next_one_drives() -> None:
    views = [view("a", 1, S.SCHEDULED, 0, 0), view("b", 2, S.HALFTIME, 1, 0)]
    d = reconcile(state(S.LIVE), views, NOW)
    assert d.authority == "b"
    assert d.patch is not None and d.patch.status is S.HALFTIME and score_of(d.patch) == (1, 0)
    assert [(r.feed, r.code) for r in d.rejected] == [("a", "illegal_status")]


def test_illegal_moves_of_less_trusted_views_are_recorded_too() -> None:
    views = [view("a", 1, S.LIVE, 1, 0), view("b", 2, S.SCHEDULED, None, None)]
    d = reconcile(state(S.LIVE), views, NOW)
    assert d.authority == "a"
    assert [(r.feed, r.code) for r in d.rejected] == [("b", "illegal_status")]


def test_skipped_polls_jump_forward() -> None:
    d = reconcile(state(S.SCHEDULED), [view("a", 1, S.FINISHED, 3, 2)], NOW)
    assert d.patch is not None and d.patch.status is S.FINISHED and score_of(d.patch) == (3, 2)


# -- score ---------------------------------------------------------------------------------


def test_lower_score_from_another_provider_is_rejected() -> None:
    s = state(home=2, score_source="b")
    d = reconcile(s, [view("a", 1, home=1), view("b", 2, home=2)], NOW)
    assert d.authority == "b" and d.patch is None
    assert [(r.feed, r.code) for r in d.rejected] == [("a", "score_decrease")]
    assert "set by b" in d.rejected[0].reason


def test_lower_score_from_the_source_is_a_correction() -> None:
    s = state(home=2, score_source="a")
    d = reconcile(s, [view("a", 1, home=1)], NOW)
    assert d.patch is not None and score_of(d.patch) == (1, 0) and d.rejected == ()


def test_a_correction_from_the_source_lowers_the_floor_for_everyone() -> None:
    # b set 2-0 while a was away; b then took the goal back: a's 1-0 now stands
    s = state(home=2, score_source="b")
    d = reconcile(s, [view("a", 1, home=1), view("b", 2, home=1)], NOW)
    assert d.authority == "a" and d.patch is not None and score_of(d.patch) == (1, 0)


def test_an_illegal_source_view_does_not_lower_the_floor() -> None:
    s = state(home=2, score_source="b")
    d = reconcile(s, [view("a", 1, home=1), view("b", 2, S.SCHEDULED, 0, 0)], NOW)
    assert d.patch is None and {r.feed for r in d.rejected} == {"a", "b"}


def test_var_retraction_lowers_the_score() -> None:
    s = state(home=1, score_source="b")
    existing = [stored("a:g1", "home", 23)]
    v = view("a", 1, home=0, events=(event("g1", "home", 23, retracted=True),))
    d = reconcile(s, [v], NOW, events=existing)
    assert d.patch is not None
    assert score_of(d.patch) == (0, 0)
    assert d.patch.retract_event_keys == ("a:g1",)
    assert d.patch.new_events == ()


def test_retraction_of_a_goal_stored_from_another_feed_marks_that_one() -> None:
    s = state(home=1, score_source="b")
    existing = [stored("b:x9", "home", 24)]
    v = view("a", 1, home=0, events=(event("g1", "home", 23, retracted=True),))
    d = reconcile(s, [v], NOW, events=existing)
    assert d.patch is not None and d.patch.retract_event_keys == ("b:x9",)
    assert score_of(d.patch) == (0, 0)


def test_an_old_retraction_does_not_justify_a_new_decrease() -> None:
    s = state(home=1, score_source="b")
    existing = [stored("a:g1", "home", 23, retracted=True), stored("b:g2", "home", 60)]
    v = view("a", 1, home=0, events=(event("g1", "home", 23, retracted=True),))
    d = reconcile(s, [v], NOW, events=existing)
    assert d.patch is None and d.rejected[0].code == "score_decrease"


def test_retraction_only_covers_its_own_side() -> None:
    s = state(home=1, away=1, score_source="b")
    existing = [stored("a:g1", "home", 23)]
    v = view("a", 1, home=0, away=0, events=(event("g1", "home", 23, retracted=True),))
    assert reconcile(s, [v], NOW, events=existing).rejected[0].code == "score_decrease"


@pytest.mark.parametrize("home", [-1, 1000])
def test_impossible_score_is_refused(home: int) -> None:
    d = reconcile(state(score_source="a"), [view("a", 1, home=home)], NOW)
    assert d.patch is None and d.rejected[0].code == "invalid_score"


def test_unknown_score_changes_nothing() -> None:
    d = reconcile(state(home=1), [view("a", 1, S.HALFTIME, None, None)], NOW)
    assert d.patch is not None and d.patch.status is S.HALFTIME
    assert score_of(d.patch) == (None, None)


# -- shoot-outs ----------------------------------------------------------------------------


def test_shootout_kicks_are_events_never_goals() -> None:
    s = state(S.PENALTIES, 1, 1, score_source="a")
    kicks = tuple(
        event(f"k{i}", side, 120, shootout=True, type=EventType.PENALTY_GOAL)
        for i, side in enumerate(SIDES)
    )
    v = view(
        "a", 1, S.PENALTIES, 1, 1, events=kicks, breakdown=Breakdown(penalties=ScoreLine(2, 1))
    )
    d = reconcile(s, [v], NOW)
    assert d.patch is not None and score_of(d.patch) == (None, None)
    assert [e.metadata for e in d.patch.new_events] == [{"shootout": True}] * 3
    assert d.patch.breakdown == Breakdown(penalties=ScoreLine(2, 1))


def test_a_retracted_shootout_kick_does_not_justify_a_decrease() -> None:
    s = state(S.PENALTIES, 1, 1, score_source="b")
    kick = event("k1", "home", 120, shootout=True, retracted=True)
    d = reconcile(s, [view("a", 1, S.PENALTIES, 0, 1, events=(kick,))], NOW)
    assert d.rejected[0].code == "score_decrease"


# -- override ------------------------------------------------------------------------------


def test_override_pins_status_and_score_but_commentary_flows() -> None:
    s = state(S.LIVE, 1, 1, override=override(home_score=1, away_score=1))
    v = view("a", 1, S.FINISHED, 2, 1, events=(event("g1", "home", 88),))
    d = reconcile(s, [v], NOW)
    assert d.patch is not None
    assert (d.patch.status, d.patch.home_score, d.patch.clock) == (None, None, None)
    assert [e.key for e in d.patch.new_events] == ["a:g1"]
    assert [(r.feed, r.code) for r in d.rejected] == [("a", "overridden")]
    assert "override clear" in d.rejected[0].reason
    assert d.authority is None and d.events_from == "a" and not d.stale


def test_override_agreeing_with_the_feed_records_nothing() -> None:
    s = state(S.LIVE, 1, 1, override=override())
    assert reconcile(s, [view("a", 1, S.LIVE, 1, 1)], NOW) == reconcile(s, [], NOW)


def test_clearing_the_override_hands_the_match_back() -> None:
    s = state(S.LIVE, 1, 1, override=override())
    v = view("a", 1, S.LIVE, 2, 1)
    assert reconcile(s, [v], NOW).patch is None
    d = reconcile(apply_patch(s, _clear()), [v], NOW)
    assert d.patch is not None and score_of(d.patch) == (2, 1)


def _clear() -> MatchPatch:
    return MatchPatch(source="override", clear_override=True)


# -- finished window -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("feed", "after", "expected"),
    [
        ("a", timedelta(minutes=30), (2, 2)),  # the source corrects within the window
        ("b", timedelta(minutes=30), None),  # another feed may not
        ("a", timedelta(hours=3), None),  # after the window nothing is applied
    ],
)
def test_finished_window(feed: str, after: timedelta, expected: tuple[int, int] | None) -> None:
    s = state(S.FINISHED, 2, 1, score_source="a")
    now = FINISHED_AT + after
    d = reconcile(s, [view(feed, 1, S.FINISHED, 2, 2, now=now)], now, finished_at=FINISHED_AT)
    got = score_of(d.patch) if d.patch else None
    assert got == expected


def test_finished_window_a_trusted_feed_confirming_the_result_outranks_the_source() -> None:
    s = state(S.FINISHED, 2, 1, score_source="b")
    now = FINISHED_AT + timedelta(minutes=10)
    views = [view("a", 1, S.FINISHED, 2, 1, now=now), view("b", 2, S.FINISHED, 1, 1, now=now)]
    d = reconcile(s, views, now, finished_at=FINISHED_AT)
    assert d.authority == "a" and d.patch is None


def test_finished_window_the_source_corrects_when_the_trusted_feed_disagrees_too() -> None:
    s = state(S.FINISHED, 2, 1, score_source="b")
    now = FINISHED_AT + timedelta(minutes=10)
    views = [view("a", 1, S.FINISHED, 1, 1, now=now), view("b", 2, S.FINISHED, 1, 1, now=now)]
    d = reconcile(s, views, now, finished_at=FINISHED_AT)
    assert d.authority == "b" and d.patch is not None and score_of(d.patch) == (1, 1)
    assert [(r.feed, r.code) for r in d.rejected] == [("a", "finished_score")]
    steps = settle(s, views, now, finished_at=FINISHED_AT)
    assert len(steps) == 2  # then a's 1-1 agrees: nothing more to do


def test_finished_window_refuses_a_non_source_score_change() -> None:
    s = state(S.FINISHED, 2, 1, score_source="b")
    now = FINISHED_AT + timedelta(minutes=10)
    d = reconcile(s, [view("a", 1, S.FINISHED, 3, 1, now=now)], now, finished_at=FINISHED_AT)
    assert d.patch is None and d.rejected[0].code == "finished_score"


def test_finished_window_defaults_to_start_plus_assumed_duration() -> None:
    s = state(S.FINISHED, 2, 1, score_source="a")
    policy = ReconcilePolicy(finished_window=timedelta(hours=1))
    inside = KICKOFF + timedelta(hours=2, minutes=59)
    outside = KICKOFF + timedelta(hours=3, minutes=1)
    for now, applied in ((inside, True), (outside, False)):
        d = reconcile(s, [view("a", 1, S.FINISHED, 2, 2, now=now)], now, policy)
        assert (d.patch is not None) is applied


# -- fields --------------------------------------------------------------------------------


def test_breakdown_merges_phase_by_phase_clock_and_stats_are_taken() -> None:
    s = state(home=1, breakdown=Breakdown(half_time=ScoreLine(1, 0)), stats={"shots": [1, 1]})
    clock = Clock(minute=67, period=Period.SECOND_HALF)
    v = view("a", 1, home=1, breakdown=Breakdown(regular_time=ScoreLine(1, 0)), clock=clock)
    d = reconcile(s, [v], NOW)
    assert d.patch is not None
    assert d.patch.breakdown == Breakdown(half_time=ScoreLine(1, 0), regular_time=ScoreLine(1, 0))
    assert d.patch.clock == clock
    assert d.patch.stats is None  # the feed sent none: keep ours


def test_kickoff_time_moves_only_before_the_match() -> None:
    later = KICKOFF + timedelta(minutes=15)
    pre = reconcile(
        state(S.POSTPONED), [view("a", 1, S.SCHEDULED, None, None, start_time=later)], NOW
    )
    assert pre.patch is not None and pre.patch.start_time == later
    assert pre.patch.status is S.SCHEDULED
    live = reconcile(state(S.LIVE), [view("a", 1, S.LIVE, start_time=later)], NOW)
    assert live.patch is None


def test_nothing_new_means_no_patch() -> None:
    clock = Clock(minute=30, period=Period.FIRST_HALF)
    s = state(home=1, clock=clock, score_source="a")
    assert reconcile(s, [view("a", 1, home=1, clock=clock)], NOW).patch is None


# -- events --------------------------------------------------------------------------------


def test_events_are_namespaced_and_known_keys_skipped() -> None:
    evs = (event("1", "home", 12), event("2", "away", 20, type=EventType.YELLOW))
    d = reconcile(state(home=1), [view("a", 1, home=1, events=evs)], NOW, events=[stored("a:1")])
    assert d.patch is not None
    assert [(e.key, e.source, e.type) for e in d.patch.new_events] == [
        ("a:2", "a", EventType.YELLOW)
    ]


def test_cross_provider_duplicates_are_skipped_count_aware() -> None:
    existing = [stored("b:x", "home", 44)]
    evs = (
        event("1", "home", 45, type=EventType.PENALTY_GOAL),  # b's goal, one minute off
        event("2", "home", 45),  # a second goal b has not seen
        event("3", None, 45, type=EventType.TEXT, message="what a goal"),
    )
    d = reconcile(state(home=2), [view("a", 1, home=2, events=evs)], NOW, events=existing)
    assert d.patch is not None
    assert [e.key for e in d.patch.new_events] == ["a:2", "a:3"]


def test_duplicates_need_the_same_side_and_a_close_minute() -> None:
    existing = [stored("b:x", "home", 40)]
    evs = (event("1", "away", 40), event("2", "home", 42))
    d = reconcile(state(), [view("a", 1, home=None, away=None, events=evs)], NOW, events=existing)
    assert d.patch is not None and [e.key for e in d.patch.new_events] == ["a:1", "a:2"]


def test_a_retraction_never_seen_is_kept_in_history() -> None:
    d = reconcile(state(), [view("a", 1, events=(event("g", retracted=True),))], NOW)
    assert d.patch is not None
    assert [(e.key, e.retracted) for e in d.patch.new_events] == [("a:g", True)]


def test_events_come_from_the_most_trusted_view_that_has_commentary() -> None:
    views = [view("a", 1, home=1), view("b", 2, home=1, events=(event("g", "home", 9),))]
    d = reconcile(state(), views, NOW)
    assert (d.authority, d.events_from) == ("a", "b")
    assert d.patch is not None and d.patch.source == "a"
    assert [e.key for e in d.patch.new_events] == ["b:g"]


def test_events_only_patch_names_the_events_feed() -> None:
    s = state(home=1, score_source="a")
    views = [view("a", 1, home=1), view("b", 2, home=1, events=(event("y", type=EventType.RED),))]
    d = reconcile(s, views, NOW)
    assert d.patch is not None and d.patch.source == "a" and len(d.patch.new_events) == 1
    solo = reconcile(s, [views[1]], NOW)
    assert solo.patch is not None and solo.patch.source == "b"


# -- settle, apply, policy -----------------------------------------------------------------


def test_settle_chains_legal_moves() -> None:
    # a (trusted) already says postponed; b saw the suspension first
    views = [view("a", 1, S.POSTPONED, 0, 0), view("b", 2, S.SUSPENDED, 0, 0)]
    steps = settle(state(S.LIVE), views, NOW)
    assert [d.patch.status if d.patch else None for d in steps] == [S.SUSPENDED, S.POSTPONED, None]
    assert steps[-1].rejected == ()


def test_settle_finishes_then_the_window_runs_from_the_whistle() -> None:
    now = KICKOFF + timedelta(hours=5)  # long after kickoff, but the whistle is now
    s = state(S.LIVE, 1, 0, score_source="b")
    steps = settle(s, [view("a", 1, S.FINISHED, 1, 0, now=now)], now)
    assert [d.patch.status if d.patch else None for d in steps] == [S.FINISHED, None]
    assert steps[0].patch is not None
    after = apply_patch(s, steps[0].patch)
    late = [view("a", 1, S.FINISHED, 1, 1, now=now)]
    assert settle(after, late, now)[0].rejected == ()  # no finished_at: window long closed
    assert settle(after, late, now, finished_at=now)[0].rejected[0].code == "finished_score"


def test_apply_patch_and_events_mirror_the_store() -> None:
    s = state(home=1, score_source="a")
    d = reconcile(
        s,
        [view("b", 1, S.HALFTIME, 0, 0, events=(event("g", "home", 23, retracted=True),))],
        NOW,
        events=[stored("a:g", "home", 23)],
    )
    assert d.patch is not None
    after = apply_patch(s, d.patch)
    assert (after.status, after.home_score, after.score_source, after.status_source) == (
        S.HALFTIME,
        0,
        "b",
        "b",
    )
    assert apply_events([stored("a:g", "home", 23)], d.patch) == (
        stored("a:g", "home", 23, retracted=True),
    )
    assert apply_patch(s, _clear()) == s


@pytest.mark.parametrize(
    "kwargs",
    [
        {"stale_after": timedelta(0)},
        {"idle_stale_after": timedelta(minutes=1)},
        {"duplicate_minute_window": -1},
    ],
)
def test_policy_refuses_nonsense(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        ReconcilePolicy(**kwargs)  # type: ignore[arg-type]


# -- a cleared override releases its values --------------------------------------------------


def test_after_an_override_is_cleared_a_lower_feed_score_stands() -> None:
    s = state(home=3, away=1, score_source=RELEASED_SOURCE)
    d = reconcile(s, [view("a", 1, home=2, away=1)], NOW)
    assert d.patch is not None and score_of(d.patch) == (2, 1) and d.rejected == ()


def test_after_an_override_is_cleared_the_feed_status_stands_even_backwards() -> None:
    s = MatchState(
        id=1, status=S.FINISHED, home_score=0, away_score=0, start_time=KICKOFF,
        status_source=RELEASED_SOURCE, score_source=RELEASED_SOURCE,
    )  # fmt: skip
    d = reconcile(s, [view("a", 1, S.LIVE, 0, 0)], NOW)
    assert d.patch is not None and d.patch.status is S.LIVE and d.rejected == ()
