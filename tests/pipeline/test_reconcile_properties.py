"""Property tests of reconciliation: random feeds, random observations, over time.

A run replays a random sequence of observations from three feeds (random
priorities, ages, statuses, scores, events with retractions and shoot-out
kicks), settling the match after each one and applying every patch the way
the store does. Properties:

(a) every status change is a legal move of the state machine;
(b) a score goes down on a side only by the goals the patch retracts there,
    or to what the feed that set the score reports (or, once finished, from
    that feed itself); never below zero;
(c) reconcile is deterministic, and a settled match reconciles to no patch
    (a single step already does when its status does not change and the
    authority stays the same feed);
(d) shoot-out kicks never change the score.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from livescore.model import (
    SCORING_EVENT_TYPES,
    EventObservation,
    EventType,
    MatchPatch,
    MatchState,
    MatchStatus,
    Side,
)
from pipeline.event_merge import ExistingEvent
from pipeline.patching import apply_events, apply_patch
from pipeline.reconcile import ProviderView, reconcile, settle
from pipeline.status_machine import can_move
from tests.pipeline.factories import KICKOFF, observation, override, state

FEEDS = ("a", "b", "c")
SIDES: tuple[Side, ...] = ("home", "away")
RUN_SETTINGS = settings(max_examples=500, deadline=None)
PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)

S = MatchStatus
# weighted towards a match in play, so runs get far before a terminal status
statuses = st.sampled_from(
    [
        *(S.SCHEDULED, S.LIVE, S.LIVE, S.LIVE, S.HALFTIME, S.HALFTIME, S.EXTRA_TIME),
        *(S.PENALTIES, S.FINISHED, S.SUSPENDED, S.POSTPONED, S.CANCELLED, S.ABANDONED),
    ]
)
event_types = st.sampled_from(
    [EventType.GOAL, EventType.OWN_GOAL, EventType.PENALTY_GOAL, EventType.YELLOW, EventType.TEXT]
)
events = st.builds(
    EventObservation,
    key=st.sampled_from(["g1", "g2", "g3", "g4", "c1"]),
    type=event_types,
    minute=st.one_of(st.none(), st.integers(1, 120)),
    side=st.sampled_from(["home", "away", None]),
    retracted=st.booleans(),
    shootout=st.sampled_from([False, False, False, True]),
)
goals = st.integers(0, 4)
scores = st.sampled_from([0, 0, 1, 1, 2, 2, 3, 4, None, -1])


@st.composite
def observations(draw: st.DrawFn, feed: str) -> Any:
    return observation(
        draw(statuses),
        draw(scores),
        draw(scores),
        provider=feed,
        events=tuple(draw(st.lists(events, max_size=4))),
    )


@st.composite
def steps(draw: st.DrawFn) -> tuple[str, int, int, Any]:
    """(feed, advance minutes, age minutes, observation)"""
    feed = draw(st.sampled_from(FEEDS))
    return (
        feed,
        draw(st.sampled_from([0, 1, 1, 2, 3, 5, 10, 30])),
        draw(st.sampled_from([0, 0, 0, 1, 2, 4, 15, 40])),
        draw(observations(feed)),
    )


priorities = st.fixed_dictionaries({feed: st.integers(1, 3) for feed in FEEDS})


def _goals_retracted(patch: MatchPatch, before: tuple[ExistingEvent, ...], side: Side) -> int:
    keys = set(patch.retract_event_keys)
    stored = sum(
        1
        for e in before
        if e.key in keys
        and not e.retracted
        and e.type in SCORING_EVENT_TYPES
        and not e.shootout
        and e.side == side
    )
    appended = sum(
        1
        for e in patch.new_events
        if e.retracted
        and e.type in SCORING_EVENT_TYPES
        and not e.metadata.get("shootout")
        and e.side == side
    )
    return stored + appended


def _check_step(
    old: MatchState,
    new: MatchState,
    patch: MatchPatch,
    views: tuple[ProviderView, ...],
    before: tuple[ExistingEvent, ...],
) -> None:
    # (a) legal moves only
    if old.status != new.status:
        event("status change")
    if patch.retract_event_keys:
        event("retraction")
    assert can_move(old.status, new.status), (old.status, new.status)
    # scores come from what some feed reported, never below zero
    assert new.home_score >= 0 and new.away_score >= 0
    if (new.home_score, new.away_score) != (old.home_score, old.away_score):
        reported = {(v.observation.home_score, v.observation.away_score) for v in views}
        assert (new.home_score, new.away_score) in reported
    # (b) decreases are retractions or corrections backed by the score source
    source_views = [
        v
        for v in views
        if v.feed == old.score_source and can_move(old.status, v.observation.status)
    ]
    sides: tuple[tuple[Side, int, int], ...] = (
        ("home", old.home_score, new.home_score),
        ("away", old.away_score, new.away_score),
    )
    for side, before_score, after_score in sides:
        if after_score >= before_score:
            continue
        event(f"score decrease ({'finished' if old.status is MatchStatus.FINISHED else 'live'})")
        if old.status is MatchStatus.FINISHED:
            assert patch.source == old.score_source
            continue
        floor = before_score
        for v in source_views:
            reported_side = getattr(v.observation, f"{side}_score")
            if reported_side is not None:
                floor = min(floor, reported_side)
        assert after_score >= floor - _goals_retracted(patch, before, side)


def _settle_and_apply(
    match: MatchState,
    existing: tuple[ExistingEvent, ...],
    views: tuple[ProviderView, ...],
    now: datetime,
    finished_at: datetime | None,
) -> tuple[MatchState, tuple[ExistingEvent, ...], datetime | None]:
    decisions = settle(match, views, now, events=existing, finished_at=finished_at)
    # (c) deterministic
    assert decisions == settle(match, views, now, events=existing, finished_at=finished_at)
    assert decisions[-1].patch is None, "settle did not reach a fixed point"
    event(f"settle steps: {len(decisions)}")
    for decision in decisions:
        patch = decision.patch
        if patch is None:
            continue
        new = apply_patch(match, patch)
        after_events = apply_events(existing, patch)
        _check_step(match, new, patch, views, existing)
        if new.status is MatchStatus.FINISHED and match.status is not MatchStatus.FINISHED:
            finished_at = now
        if patch.status is None:
            # (c) one step is already a fixed point when the status holds, unless
            # the step handed authority to another feed (a finished match's score
            # source corrected the score, and a more trusted feed now agrees)
            again = reconcile(new, views, now, events=after_events, finished_at=finished_at)
            if again.authority == decision.authority:
                assert again.patch is None, (patch, again.patch)
        match, existing = new, after_events
    # (c) idempotent once settled
    again = reconcile(match, views, now, events=existing, finished_at=finished_at)
    assert again.patch is None
    return match, existing, finished_at


@RUN_SETTINGS
@given(priorities, st.lists(steps(), min_size=1, max_size=12))
def test_random_feeds_over_time_keep_the_invariants(
    prio: dict[str, int], sequence: list[tuple[str, int, int, Any]]
) -> None:
    match = state(MatchStatus.SCHEDULED)
    existing: tuple[ExistingEvent, ...] = ()
    latest: dict[str, ProviderView] = {}
    now = KICKOFF - timedelta(minutes=10)
    finished_at: datetime | None = None
    for feed, advance, age, obs in sequence:
        now += timedelta(minutes=advance)
        latest[feed] = ProviderView(feed, prio[feed], now - timedelta(minutes=age), obs)
        match, existing, finished_at = _settle_and_apply(
            match, existing, tuple(latest.values()), now, finished_at
        )


@st.composite
def snapshots(draw: st.DrawFn) -> tuple[MatchState, tuple[ProviderView, ...]]:
    """A random state and random views at KICKOFF + 1h."""
    now = KICKOFF + timedelta(hours=1)
    match = state(
        draw(st.sampled_from(MatchStatus)),
        draw(goals),
        draw(goals),
        score_source=draw(st.sampled_from([*FEEDS, None])),
    )
    views = tuple(
        ProviderView(
            feed,
            draw(st.integers(1, 3)),
            now - timedelta(minutes=draw(st.integers(0, 10))),
            draw(observations(feed)),
        )
        for feed in draw(st.lists(st.sampled_from(FEEDS), unique=True, max_size=3))
    )
    return match, views


NOW_SNAPSHOT = KICKOFF + timedelta(hours=1)


@PROPERTY_SETTINGS
@given(snapshots(), st.data())
def test_shootout_kicks_never_change_the_score(
    snapshot: tuple[MatchState, tuple[ProviderView, ...]], data: st.DataObject
) -> None:
    match, views = snapshot
    kicks = st.lists(
        st.builds(
            EventObservation,
            key=st.sampled_from(["k1", "k2", "k3"]),
            type=st.sampled_from(sorted(SCORING_EVENT_TYPES)),
            minute=st.just(120),
            side=st.sampled_from(SIDES),
            retracted=st.booleans(),
            shootout=st.just(True),
        ),
        min_size=1,
        max_size=5,
    )
    with_kicks = tuple(
        dataclasses.replace(
            v,
            observation=dataclasses.replace(
                v.observation, events=v.observation.events + tuple(data.draw(kicks))
            ),
        )
        for v in views
    )
    plain = reconcile(match, views, NOW_SNAPSHOT)
    kicked = reconcile(match, with_kicks, NOW_SNAPSHOT)
    assert kicked.authority == plain.authority
    assert kicked.rejected == plain.rejected

    def scoreline(p: MatchPatch | None) -> tuple[Any, ...]:
        return (p.status, p.home_score, p.away_score) if p else (None, None, None)

    assert scoreline(kicked.patch) == scoreline(plain.patch)


@PROPERTY_SETTINGS
@given(snapshots())
def test_an_override_pins_everything_but_commentary(
    snapshot: tuple[MatchState, tuple[ProviderView, ...]],
) -> None:
    match, views = snapshot
    pinned = dataclasses.replace(match, override=override())
    decision = reconcile(pinned, views, NOW_SNAPSHOT)
    assert decision.authority is None and not decision.stale
    if decision.patch is not None:
        untouched = MatchPatch(
            source=decision.patch.source,
            new_events=decision.patch.new_events,
            retract_event_keys=decision.patch.retract_event_keys,
        )
        assert decision.patch == untouched


@PROPERTY_SETTINGS
@given(snapshots())
def test_reconcile_is_deterministic_whatever_the_order_of_views(
    snapshot: tuple[MatchState, tuple[ProviderView, ...]],
) -> None:
    match, views = snapshot
    assert reconcile(match, views, NOW_SNAPSHOT) == reconcile(
        match, tuple(reversed(views)), NOW_SNAPSHOT
    )
