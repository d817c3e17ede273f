"""Reconciliation: the latest view of every feed covering a match -> one decision.

``reconcile(state, views, now, policy, events=..., finished_at=...)`` is a
pure function: same inputs, same ``Decision`` (replay depends on it). Pass
the latest observation of EVERY feed covering the match, however old: age
is judged here.

The rules, in order:

1. **Freshness.** A view is fresh when fetched at most ``stale_after`` ago
   while the match is *hot* (its status, or any feed's, is in play or
   suspended), else at most ``idle_stale_after`` ago. Stale views count for
   nothing. An in-play match whose feeds are all stale is flagged
   ``stale=True`` and left as it is: nothing is guessed.
2. **Override.** A match pinned by a manual override takes no status, score,
   breakdown, clock, stats or kickoff time from any feed. Commentary still
   flows (appended and retracted events are history, not the pinned values);
   the most trusted fresh view, when it disagrees, is recorded as
   ``overridden`` so operators can see when to clear the override.
3. **Trust.** Fresh views are ranked by priority (lower number = more
   trusted), then fresher ``observed_at``, then feed name. The authority is
   the first view in that order that passes the rules below; every view
   before it is recorded as rejected (so a glitching top feed cannot freeze
   a match, and the next trusted one takes over when it goes stale). The
   whole view is taken or refused: status, score, breakdown, clock, stats.
4. **Status** moves only along ``pipeline.status_machine``; a view asking for
   an illegal move is refused (``illegal_status``). Illegal moves are recorded
   for every fresh view, not only those ranked above the authority.
5. **Score** never negative nor above ``MAX_SCORE`` (``invalid_score``). It goes down on a side only
   (a) by as many goals as the view's events newly retract on that side
   (VAR), or (b) to what the feed that set the current score
   (``state.score_source``) now reports, when that feed's fresh view is
   itself legal: a correction from the source lowers the floor for every
   view. Any other lower score is refused (``score_decrease``).
5a. **No flaps.** Once a goal is retracted (VAR) in any feed (stored
   retracted, or retracted by a fresh view's events now), a feed that has not
   itself reported that retraction and whose score rises on that side to a
   count only the retracted goals explain is lagging: the view is refused
   (``lagging_score``) and the next trusted view speaks, until the feed agrees
   or a goal event explains the count. Precisely, with ``base`` the higher of
   the current score and the goals the events count on that side (stored
   events plus every fresh view's commentary merged in trust order), and
   ``r`` the retracted goals on that side the feed has not reported
   retracted: a side reported at ``x`` with ``base < x <= base + r`` is
   lagging. True goals are not delayed: a rise with its own goal event is
   within ``base``, and with no retracted goal ``r`` is 0. The rule looks only
   at the views it is given (no memory), so it also holds a feed that first
   agreed and then counts the retracted goal again.
6. **Finished.** After ``finished``, the status stays finished (rule 4).
   For ``finished_window`` after the finish (``finished_at``, else
   ``start_time + assumed_duration``) only the score source may change the
   score (up or down, no floor); a view of another feed reporting a
   different score is refused (``finished_score``), so the source's
   correction applies unless a more trusted feed confirms the result as it
   stands. After the window nothing is applied.
7. **Fields.** From the authority: status and score when they differ; the
   breakdown phase by phase (a phase the feed leaves out keeps its value);
   the clock and stats when the feed sends them; the kickoff time only while
   the match is scheduled or postponed.
8. **Released.** When a manual override is cleared, the store marks the
   values it had set as vouched for by nobody (``RELEASED_SOURCE``): the
   authority's status is taken whatever the state machine says (an override
   may have set an impossible one), and its score whatever the floor.
9. **Events** come from the authority when it carries commentary, else from
   the most trusted fresh view that does and whose status is legal; merged by
   ``pipeline.event_merge`` (feed-namespaced keys, cross-feed duplicates
   skipped, retractions marked, shoot-out kicks never goals).
10. **Stage and group** (reference data, not pinned by an override nor bound
   to the authority): each is taken from the most trusted feed that says it,
   fresh or not (views of every feed are passed in), when it differs from the
   stored one. A feed that does not say it (API-Football never names the
   group, TheSportsDB's live rows carry none) never blanks it, so a match
   keeps its group while a less informative feed speaks for its score.

One step can unlock another: after a less trusted feed moves a match
``live -> suspended``, a more trusted feed's ``postponed`` becomes legal.
``settle`` runs reconcile to a fixed point and returns each step, every one a
legal single move; callers apply the patches in order and record the
rejections of the last decision. When no view ranked above the authority
was refused for its status, one step is already a fixed point.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from livescore.model import (
    IN_PLAY_STATUSES,
    RELEASED_SOURCE,
    SCORING_EVENT_TYPES,
    Breakdown,
    Clock,
    MatchPatch,
    MatchState,
    MatchStatus,
    ScoreLine,
)
from pipeline.decision import (
    DEFAULT_POLICY,
    Decision,
    ProviderView,
    ReconcilePolicy,
    Rejection,
)
from pipeline.event_merge import (
    EventMerge,
    ExistingEvent,
    counts_as_goal,
    merge_events,
    reported_retractions,
)
from pipeline.patching import apply_events, apply_patch
from pipeline.status_machine import IllegalTransition, can_move

__all__ = [
    "DEFAULT_POLICY",
    "Decision",
    "ExistingEvent",
    "ProviderView",
    "ReconcilePolicy",
    "Rejection",
    "reconcile",
    "settle",
]

HOT_STATUSES = IN_PLAY_STATUSES | {MatchStatus.SUSPENDED}
#: The store refuses scores above this (``store.writes``); refused here first.
MAX_SCORE = 999
_PRE_MATCH = frozenset({MatchStatus.SCHEDULED, MatchStatus.POSTPONED})
_NO_MERGE = EventMerge()


def reconcile(
    state: MatchState,
    views: Sequence[ProviderView],
    now: datetime,
    policy: ReconcilePolicy = DEFAULT_POLICY,
    *,
    events: Sequence[ExistingEvent] = (),
    finished_at: datetime | None = None,
) -> Decision:
    """One reconciliation step for one match (rules in the module docstring)."""
    ordered = _by_trust(views)
    fresh = _fresh(state, ordered, now, policy)
    if state.override is not None:
        return _with_reference(state, ordered, _pinned(state, fresh, events, policy))
    stale = state.status in IN_PLAY_STATUSES and bool(ordered) and not fresh
    finished = state.status is MatchStatus.FINISHED
    if finished:
        end = finished_at or state.start_time + policy.assumed_duration
        if now > end + policy.finished_window:
            decision = Decision(None, rejected=tuple(_illegal(state, fresh)))
            return _with_reference(state, ordered, decision)
    decision = _decide(state, fresh, events, policy, finished=finished, stale=stale)
    return _with_reference(state, ordered, decision)


def reference(state: MatchState, views: Sequence[ProviderView]) -> dict[str, tuple[str, str]]:
    """Rule 10: ``{"stage"|"group": (value, feed)}`` for each of them the most
    trusted feed that says it (``views`` in trust order) says differently."""
    found: dict[str, tuple[str, str]] = {}
    for name in ("stage", "group"):
        said = next((v for v in views if getattr(v.observation, name) is not None), None)
        if said is not None and getattr(said.observation, name) != getattr(state, name):
            found[name] = (getattr(said.observation, name), said.feed)
    return found


def _with_reference(
    state: MatchState, ordered: Sequence[ProviderView], decision: Decision
) -> Decision:
    """``decision`` with rule 10's stage and group added to its patch."""
    found = reference(state, ordered)
    if not found:
        return decision
    stage = found["stage"][0] if "stage" in found else None
    group = found["group"][0] if "group" in found else None
    if decision.patch is not None:
        patch = dataclasses.replace(decision.patch, stage=stage, group=group)
    else:
        patch = MatchPatch(source=next(iter(found.values()))[1], stage=stage, group=group)
    return dataclasses.replace(decision, patch=patch)


def settle(
    state: MatchState,
    views: Sequence[ProviderView],
    now: datetime,
    policy: ReconcilePolicy = DEFAULT_POLICY,
    *,
    events: Sequence[ExistingEvent] = (),
    finished_at: datetime | None = None,
) -> tuple[Decision, ...]:
    """Reconcile until nothing changes. Apply each decision's patch in order;
    the last decision (patch None unless the step bound was hit) carries the
    rejections and the stale flag to record."""
    decisions: list[Decision] = []
    for _ in range(2 * len(views) + 2):
        decision = reconcile(state, views, now, policy, events=events, finished_at=finished_at)
        decisions.append(decision)
        if decision.patch is None:
            break
        if decision.patch.status is MatchStatus.FINISHED and state.status != MatchStatus.FINISHED:
            finished_at = now
        state = apply_patch(state, decision.patch)
        events = apply_events(events, decision.patch)
    return tuple(decisions)


# -- ranking and freshness ----------------------------------------------------------------


def _by_trust(views: Sequence[ProviderView]) -> list[ProviderView]:
    """Most trusted first; one view per feed (its freshest)."""
    ranked = sorted(views, key=lambda v: (v.priority, -v.observed_at.timestamp(), v.feed))
    seen: set[str] = set()
    unique = []
    for view in ranked:
        if view.feed not in seen:
            seen.add(view.feed)
            unique.append(view)
    return unique


def _fresh(
    state: MatchState, ordered: list[ProviderView], now: datetime, policy: ReconcilePolicy
) -> list[ProviderView]:
    hot = state.status in HOT_STATUSES or any(v.observation.status in HOT_STATUSES for v in ordered)
    horizon = policy.stale_after if hot else policy.idle_stale_after
    return [v for v in ordered if now - v.observed_at <= horizon]


# -- judging views -------------------------------------------------------------------------


def _score(view: ProviderView) -> tuple[int, int] | None:
    obs = view.observation
    if obs.home_score is None or obs.away_score is None:
        return None
    return obs.home_score, obs.away_score


def _plausible(score: tuple[int, int]) -> bool:
    return min(score) >= 0 and max(score) <= MAX_SCORE


def _illegal_status(state: MatchState, view: ProviderView) -> Rejection | None:
    new = view.observation.status
    if state.status_source == RELEASED_SOURCE or can_move(state.status, new):
        return None
    return Rejection(view.feed, "illegal_status", str(IllegalTransition(state.status, new)))


def _illegal(state: MatchState, views: Sequence[ProviderView]) -> list[Rejection]:
    return [r for v in views if (r := _illegal_status(state, v)) is not None]


def _floor(state: MatchState, views: Sequence[ProviderView]) -> tuple[int, int]:
    """The lowest score a view may report without a retraction (rule 5)."""
    current = (state.home_score, state.away_score)
    if state.score_source == RELEASED_SOURCE:
        return 0, 0  # an override was cleared: nobody vouches for the current score
    for view in views:
        if view.feed == state.score_source:
            score = _score(view)
            if score is None or not _plausible(score) or _illegal_status(state, view):
                return current
            return min(current[0], score[0]), min(current[1], score[1])
    return current


def _refuse(
    state: MatchState,
    view: ProviderView,
    floor: tuple[int, int],
    merge: EventMerge,
    retractions: _Retractions,
    *,
    finished: bool,
) -> Rejection | None:
    illegal = _illegal_status(state, view)
    if illegal is not None:
        return illegal
    score = _score(view)
    if score is None:
        return None
    shown = f"{score[0]}-{score[1]}"
    current = (state.home_score, state.away_score)
    source = state.score_source or "an unknown source"
    if not _plausible(score):
        return Rejection(view.feed, "invalid_score", f"impossible score {shown}; fix the adapter")
    lagging = retractions.lagging(state, view, score)
    if lagging is not None:
        return Rejection(view.feed, "lagging_score", lagging)
    if finished:
        released = state.score_source == RELEASED_SOURCE
        if score != current and view.feed != state.score_source and not released:
            return Rejection(
                view.feed,
                "finished_score",
                f"reports {shown} after the final whistle; only {source}, which set "
                f"{current[0]}-{current[1]}, may correct a finished match "
                "(or use `livescore override score`)",
            )
        return None
    lowest = (floor[0] - merge.home_goals_retracted, floor[1] - merge.away_goals_retracted)
    if score[0] < lowest[0] or score[1] < lowest[1]:
        return Rejection(
            view.feed,
            "score_decrease",
            f"reports {shown}, below {current[0]}-{current[1]} set by {source}; a score "
            f"goes down only through a retraction (VAR) or a correction from {source}",
        )
    return None


class _Retractions:
    """Rule 5a's evidence, built only when some view's score rises: the match's
    commentary with every fresh view's events merged in (trust order)."""

    def __init__(
        self, fresh: Sequence[ProviderView], events: Sequence[ExistingEvent], window: int
    ) -> None:
        self._fresh, self._events, self._window = fresh, events, window
        self._merged: tuple[ExistingEvent, ...] | None = None

    def _any(self) -> bool:
        return any(_retracted_goal(e) for e in self._events) or any(
            e.retracted and e.type in SCORING_EVENT_TYPES and not e.shootout
            for v in self._fresh
            for e in v.observation.events
        )

    def merged(self) -> tuple[ExistingEvent, ...]:
        if self._merged is None:
            merged = tuple(self._events)
            if self._any():
                for view in self._fresh:
                    if not view.carries_events:
                        continue
                    m = merge_events(
                        view.feed, view.observation.events, merged, minute_window=self._window
                    )
                    if m.new_events or m.retract_event_keys:
                        patch = MatchPatch(
                            source=view.feed,
                            new_events=m.new_events,
                            retract_event_keys=m.retract_event_keys,
                        )
                        merged = apply_events(merged, patch)
            self._merged = merged
        return self._merged

    def lagging(self, state: MatchState, view: ProviderView, score: tuple[int, int]) -> str | None:
        """Why ``view``'s score is a lagging count (rule 5a), or None."""
        current = (state.home_score, state.away_score)
        if score[0] <= current[0] and score[1] <= current[1]:
            return None
        merged = self.merged()
        if not any(_retracted_goal(e) for e in merged):
            return None
        own = reported_retractions(
            view.feed, view.observation.events, merged, minute_window=self._window
        )
        for index, side in enumerate(("home", "away")):
            if score[index] <= current[index]:
                continue
            goals = sum(1 for e in merged if e.side == side and counts_as_goal(e))
            base = max(current[index], goals)
            unreported = sum(
                1
                for i, e in enumerate(merged)
                if e.side == side and _retracted_goal(e) and i not in own
            )
            if base < score[index] <= base + unreported:
                return (
                    f"reports {score[0]}-{score[1]}, counting a {side} goal retracted (VAR) "
                    f"that {view.feed} has not reported retracted; held as lagging until "
                    f"{view.feed} agrees or a goal event explains {score[index]}"
                )
        return None


def _retracted_goal(event: ExistingEvent) -> bool:
    return (
        event.retracted
        and event.type in SCORING_EVENT_TYPES
        and not event.shootout
        and event.side is not None
    )


# -- deciding ------------------------------------------------------------------------------


def _decide(
    state: MatchState,
    fresh: Sequence[ProviderView],
    events: Sequence[ExistingEvent],
    policy: ReconcilePolicy,
    *,
    finished: bool,
    stale: bool,
) -> Decision:
    floor = _floor(state, fresh)
    window = policy.duplicate_minute_window
    authority: ProviderView | None = None
    authority_merge = _NO_MERGE
    rejected: list[Rejection] = []
    retractions = _Retractions(fresh, events, window)
    for view in fresh:
        if authority is not None:
            rejected.extend(_illegal(state, (view,)))
            continue
        merge = merge_events(view.feed, view.observation.events, events, minute_window=window)
        refusal = _refuse(state, view, floor, merge, retractions, finished=finished)
        if refusal is None:
            authority, authority_merge = view, merge
        else:
            rejected.append(refusal)

    teller, merge = authority, authority_merge
    if authority is None or not authority.carries_events:
        teller = next(
            (v for v in fresh if v.carries_events and _illegal_status(state, v) is None), None
        )
        if teller is not None:
            merge = merge_events(
                teller.feed, teller.observation.events, events, minute_window=window
            )
    fields = _fields(state, authority) if authority is not None else {}
    patch = None
    if fields or merge.new_events or merge.retract_event_keys:
        source = authority or teller
        assert source is not None
        patch = MatchPatch(
            source=source.feed,
            new_events=merge.new_events,
            retract_event_keys=merge.retract_event_keys,
            **fields,
        )
    return Decision(
        patch,
        rejected=tuple(rejected),
        stale=stale,
        authority=authority.feed if authority else None,
        events_from=teller.feed if teller else None,
    )


def _fields(state: MatchState, view: ProviderView) -> dict[str, Any]:
    """The authority's values that differ from the state (rule 7)."""
    obs = view.observation
    fields: dict[str, Any] = {}
    if obs.status != state.status:
        fields["status"] = obs.status
    score = _score(view)
    if score is not None and score != (state.home_score, state.away_score):
        fields["home_score"], fields["away_score"] = score
    breakdown = _merge_breakdown(state.breakdown, obs.breakdown)
    if breakdown != state.breakdown:
        fields["breakdown"] = breakdown
    if obs.clock != Clock() and obs.clock != state.clock:
        fields["clock"] = obs.clock
    if obs.stats and obs.stats != state.stats:
        fields["stats"] = dict(obs.stats)
    if state.status in _PRE_MATCH and obs.start_time != state.start_time:
        fields["start_time"] = obs.start_time
    return fields


def _pick(new: ScoreLine | None, old: ScoreLine | None) -> ScoreLine | None:
    if new is None or (new.home is None and new.away is None):
        return old
    return new


def _merge_breakdown(old: Breakdown, new: Breakdown) -> Breakdown:
    return Breakdown(
        half_time=_pick(new.half_time, old.half_time),
        regular_time=_pick(new.regular_time, old.regular_time),
        extra_time=_pick(new.extra_time, old.extra_time),
        penalties=_pick(new.penalties, old.penalties),
    )


def _pinned(
    state: MatchState,
    fresh: Sequence[ProviderView],
    events: Sequence[ExistingEvent],
    policy: ReconcilePolicy,
) -> Decision:
    """Rule 2: an override pins everything but commentary."""
    override = state.override
    assert override is not None
    rejected: tuple[Rejection, ...] = ()
    if fresh:
        top = fresh[0]
        score = _score(top)
        if top.observation.status != state.status or (
            score is not None and score != (state.home_score, state.away_score)
        ):
            says = f"{top.observation.status} {score[0]}-{score[1]}" if score else "otherwise"
            reason = (
                f"says {says}, but the match is pinned by {override.who}'s override "
                f"({override.reason}) since {override.since.isoformat()}; "
                "`livescore override clear MATCH` hands it back to the feeds"
            )
            rejected = (Rejection(top.feed, "overridden", reason),)
    teller = next((v for v in fresh if v.carries_events), None)
    patch = None
    if teller is not None:
        merge = merge_events(
            teller.feed,
            teller.observation.events,
            events,
            minute_window=policy.duplicate_minute_window,
        )
        if merge.new_events or merge.retract_event_keys:
            patch = MatchPatch(
                source=teller.feed,
                new_events=merge.new_events,
                retract_event_keys=merge.retract_event_keys,
            )
    return Decision(patch, rejected=rejected, events_from=teller.feed if teller else None)
