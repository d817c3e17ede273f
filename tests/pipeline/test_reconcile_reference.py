"""Reconciliation rule 10: a match's stage and group come from the most trusted
feed that says them, and a feed that does not say them never blanks them."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from livescore.model import MatchStatus
from pipeline.patching import apply_patch
from pipeline.reconcile import ProviderView, reconcile, settle
from tests.pipeline.factories import NOW, override, state, view


def test_most_trusted_feed_naming_the_group_wins_over_a_less_trusted_one() -> None:
    views = [
        view("espn", 10, group="Group B", stage="group_stage"),
        view("tsdb", 30, group="Group C"),
    ]
    patch = reconcile(state(), views, NOW).patch
    assert patch is not None and (patch.stage, patch.group) == ("group_stage", "Group B")


def test_a_trusted_feed_without_a_group_does_not_blank_the_group_of_a_less_trusted_one() -> None:
    # API-Football says the stage only; ESPN, less trusted, names the group
    views = [view("apif", 1, stage="group_stage"), view("espn", 10, group="Group D")]
    patch = reconcile(state(), views, NOW).patch
    assert patch is not None and (patch.stage, patch.group) == ("group_stage", "Group D")
    assert patch.source == "apif"


def test_a_stored_group_no_feed_names_any_more_is_kept() -> None:
    decision = reconcile(state(group="Group A", stage="group_stage"), [view("apif", 1)], NOW)
    assert decision.patch is None


def test_an_unchanged_group_makes_no_patch() -> None:
    views = [view("espn", 10, group="Group B", stage="group_stage")]
    assert reconcile(state(group="Group B", stage="group_stage"), views, NOW).patch is None


def test_a_stale_feed_still_names_the_group() -> None:
    views = [view("espn", 10, group="Group B", age=timedelta(hours=3))]
    patch = reconcile(state(), views, NOW).patch
    assert patch is not None and patch.group == "Group B"


def test_an_override_does_not_pin_the_group() -> None:
    pinned = state(override=override(home_score=1, away_score=0), home=1)
    patch = reconcile(pinned, [view("espn", 10, 0, 0, group="Group E")], NOW).patch
    assert patch is not None and patch.group == "Group E"
    assert (patch.home_score, patch.status) == (None, None)


def test_the_group_rides_along_with_the_authoritys_score() -> None:
    views = [view("espn", 10, MatchStatus.LIVE, 1, 0, group="Group B")]
    patch = reconcile(state(), views, NOW).patch
    assert patch is not None and (patch.home_score, patch.group) == (1, "Group B")


groups = st.sampled_from([None, None, "Group A", "Group B"])
stages = st.sampled_from([None, None, "group_stage", "last_16"])


@given(
    said=st.lists(st.tuples(groups, stages), min_size=1, max_size=4),
    stored_group=groups,
    stored_stage=stages,
)
def test_settled_group_is_the_most_trusted_said_one_else_the_stored_one(
    said: list[tuple[str | None, str | None]],
    stored_group: str | None,
    stored_stage: str | None,
) -> None:
    views: list[ProviderView] = [
        view(f"f{rank}", rank, group=group, stage=stage)
        for rank, (group, stage) in enumerate(said, start=1)
    ]
    current = state(group=stored_group, stage=stored_stage)
    for decision in settle(current, views, NOW):
        if decision.patch is not None:
            current = apply_patch(current, decision.patch)
    expect_group = next((g for g, _ in said if g is not None), stored_group)
    expect_stage = next((s for _, s in said if s is not None), stored_stage)
    assert (current.group, current.stage) == (expect_group, expect_stage)
    # and settling again changes nothing (a fixed point: no flapping)
    assert all(d.patch is None for d in settle(current, views, NOW))
