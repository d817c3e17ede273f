"""Manual overrides (``livescore override ...``).

An override pins a match's score and/or status against every provider until
it is cleared: reconciliation leaves pinned matches alone. Setting and
clearing go through the single write path (so they get a seq and are
published like any other change) and are written to the audit trail in the
same transaction: who, when, why, old and new values. Clearing lets
reconciliation take over again on the next observation (or sweep).
"""

from __future__ import annotations

from typing import Any

from livescore import clock
from livescore.errors import InvalidChange
from livescore.limits import MAX_NAME_CHARS, MAX_REASON_CHARS, LimitExceeded, check_text
from livescore.model import OVERRIDE_SOURCE, MatchPatch, MatchState, MatchStatus, OverrideInfo
from store import overrides as store_overrides
from store.db import Conn, atomic
from store.matches import lock_state
from store.writes import Change, apply_change

SOURCE = OVERRIDE_SOURCE


def _check_audit_text(who: str, reason: str | None) -> None:
    """The audit trail's texts are bounded (they travel in the published change)."""
    try:
        check_text(who, "the operator name ($LIVESCORE_OPERATOR)", limit=MAX_NAME_CHARS)
        if reason is not None:
            check_text(reason, "--reason", limit=MAX_REASON_CHARS)
    except LimitExceeded as exc:
        raise InvalidChange(str(exc)) from None


def _snapshot(state: MatchState) -> dict[str, Any]:
    return {
        "status": state.status.value,
        "homeScore": state.home_score,
        "awayScore": state.away_score,
        "override": state.override.to_json() if state.override else None,
    }


async def set_score(
    conn: Conn, match_id: int, home: int, away: int, *, who: str, reason: str
) -> list[Change]:
    if home < 0 or away < 0:
        raise InvalidChange("scores cannot be negative")
    return await _set(conn, match_id, "score", who, reason, home=home, away=away)


async def set_status(
    conn: Conn, match_id: int, status: MatchStatus, *, who: str, reason: str
) -> list[Change]:
    return await _set(conn, match_id, "status", who, reason, status=status)


async def _set(
    conn: Conn,
    match_id: int,
    action: str,
    who: str,
    reason: str,
    *,
    home: int | None = None,
    away: int | None = None,
    status: MatchStatus | None = None,
) -> list[Change]:
    if not reason.strip():
        raise InvalidChange("an override needs a reason (--reason TEXT)")
    _check_audit_text(who, reason)
    async with atomic(conn):
        before, _ = await lock_state(conn, match_id)
        info = OverrideInfo(
            who=who,
            reason=reason,
            since=clock.now(),
            status=status,
            home_score=home,
            away_score=away,
        )
        changes = await apply_change(
            conn,
            match_id,
            MatchPatch(
                source=SOURCE,
                status=status,
                home_score=home,
                away_score=away,
                override=info,
            ),
        )
        after, _ = await lock_state(conn, match_id)
        await store_overrides.audit(
            conn,
            match_id=match_id,
            action=action,
            who=who,
            reason=reason,
            old=_snapshot(before),
            new=_snapshot(after),
        )
    return changes


async def clear(conn: Conn, match_id: int, *, who: str, reason: str | None = None) -> list[Change]:
    _check_audit_text(who, reason)
    async with atomic(conn):
        before, _ = await lock_state(conn, match_id)
        if before.override is None:
            return []
        changes = await apply_change(conn, match_id, MatchPatch(source=SOURCE, clear_override=True))
        after, _ = await lock_state(conn, match_id)
        await store_overrides.audit(
            conn,
            match_id=match_id,
            action="clear",
            who=who,
            reason=reason,
            old=_snapshot(before),
            new=_snapshot(after),
        )
    return changes
