"""Keeping score over REST: the writes behind ``PATCH /api/matches/{id}``,
``DELETE /api/matches/{id}/override`` and a scoring ``POST .../commentary``.

Each runs in one transaction through the single write path (so every change
is numbered and published) under the match's row lock, which is also what
makes "does a feed cover this match" stable while it decides: ingestion locks
the match before it records an observation.

* ``update_match`` (PATCH): on a match no feed covers, the scorer's values are
  written as they are (source ``api``); on a match a feed covers (or one
  already pinned) the update is an override: it pins the match against every
  feed until cleared, exactly like ``livescore override``. Either way it is
  audited like an override (``override_audit``, action ``update``: who = the
  API key's name, why, old and new values).
* ``clear_override`` (DELETE .../override): ``pipeline.overrides.clear`` with
  the key's name.
* ``add_event`` (POST .../commentary): the event, its retraction of an earlier
  one (``retracts``) and, on a match whose score is the scorer's, the score,
  in one change (``pipeline.scoring.commentary_patch``).
"""

from __future__ import annotations

from typing import Any

from livescore import clock
from livescore.errors import InvalidChange
from livescore.limits import MAX_NAME_CHARS, MAX_REASON_CHARS, LimitExceeded, check_text
from livescore.model import OVERRIDE_SOURCE, MatchPatch, MatchState, NewEvent, OverrideInfo
from pipeline import overrides
from pipeline.scoring import ScoreUpdate, ScoringRefused, commentary_patch, update_patch
from store import overrides as store_overrides
from store.coverage import is_covered
from store.db import Conn, atomic
from store.events import get_event
from store.matches import lock_state
from store.writes import Change, apply_change

#: the source of what a scorer writes on a match no feed covers
SOURCE = "api"
#: the reason recorded when a PATCH gives none
DEFAULT_REASON = "set over the REST API"


def _snapshot(state: MatchState) -> dict[str, Any]:
    return {
        "status": state.status.value,
        "homeScore": state.home_score,
        "awayScore": state.away_score,
        "clock": state.clock.to_json(),
        "override": state.override.to_json() if state.override else None,
    }


def _check_audit_text(who: str, reason: str) -> None:
    try:
        check_text(who, "the API key's name", limit=MAX_NAME_CHARS)
        check_text(reason, "reason", limit=MAX_REASON_CHARS)
    except LimitExceeded as exc:
        raise InvalidChange(str(exc)) from None


async def update_match(
    conn: Conn, match_id: int, update: ScoreUpdate, *, who: str, reason: str | None
) -> list[Change]:
    """Apply a scorer's update (``IllegalTransition`` for an illegal status move);
    the changes written (empty: nothing changed, nothing audited)."""
    why = reason or DEFAULT_REASON
    _check_audit_text(who, why)
    async with atomic(conn):
        before, _ = await lock_state(conn, match_id)
        pinned = before.override is not None or await is_covered(conn, match_id)
        override = None
        if pinned:
            home = away = None
            if update.score_given:  # pin the whole resulting score, not half of it
                home = _or(update.home_score, before.home_score)
                away = _or(update.away_score, before.away_score)
            override = OverrideInfo(
                who=who,
                reason=why,
                since=clock.now(),
                status=update.status,
                home_score=home,
                away_score=away,
            )
        patch = update_patch(
            before, update, source=OVERRIDE_SOURCE if pinned else SOURCE, override=override
        )
        changes = await apply_change(conn, match_id, patch)
        if changes:
            after, _ = await lock_state(conn, match_id)
            await store_overrides.audit(
                conn,
                match_id=match_id,
                action="update",
                who=who,
                reason=why,
                old=_snapshot(before),
                new=_snapshot(after),
            )
    return changes


def _or(value: int | None, default: int) -> int:
    return value if value is not None else default


async def clear_override(
    conn: Conn, match_id: int, *, who: str, reason: str | None
) -> list[Change]:
    """Unpin the match (audited with ``who``); empty when it was not pinned."""
    return await overrides.clear(conn, match_id, who=who, reason=reason)


async def add_event(
    conn: Conn, match_id: int, event: NewEvent, *, retracts: int | None = None
) -> list[Change]:
    """Add ``event`` (retracting event ``retracts`` of the same match); on a match no
    feed covers and no override pins, a goal moves the score in the same change.
    ``ScoringRefused`` names the field at fault."""

    async def patch(state: MatchState) -> MatchPatch:
        counts = state.override is None and not await is_covered(conn, match_id)
        retracted = None
        if retracts is not None:
            retracted = await get_event(conn, match_id, retracts)
            if retracted is None:
                raise ScoringRefused("retracts", f"match {match_id} has no event {retracts}")
            if retracted["retracted"]:
                raise ScoringRefused("retracts", f"event {retracts} is already retracted")
        return commentary_patch(
            state, event, source=event.source or SOURCE, counts=counts, retracted=retracted
        )

    return await apply_change(conn, match_id, patch)
