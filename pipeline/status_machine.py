"""The match status state machine: which moves a provider may make.

A provider observation may move a match's status only along this table; an
illegal move is refused (recorded by reconciliation, never applied). A manual
override is the one way around it: it is applied by the operator, not by
this machine.

The natural order of a match, with forward jumps legal because a poll can
miss steps (we may see ``scheduled`` and then ``finished``)::

    scheduled ─> live ─> halftime ─> extra_time ─> penalties ─> finished
                  ▲          │
                  └──────────┘  second half: halftime -> live is the one move "back"

Every status may move to any status to its right on that line; ``live`` and
``halftime`` alternate. Nothing moves left except ``halftime -> live``: no
``extra_time -> live``, no ``penalties -> extra_time`` and never anything out
of ``finished``. The break inside extra time is still ``extra_time`` (adapters
map it so), so ``extra_time -> halftime`` is illegal. A match can go straight
to penalties after regulation (cups without extra time): ``live -> penalties``.

Interruptions, off the line::

    suspended  <- scheduled*, live, halftime, extra_time, penalties
    suspended  -> live, halftime, extra_time, penalties (resumed), finished
                  (result stands), postponed (resumed another day), abandoned
    postponed  <- scheduled, suspended
    postponed  -> scheduled (rescheduled), cancelled, and everything
                  ``scheduled`` may reach (we missed the rescheduling poll)
    abandoned  <- scheduled*, live, halftime, extra_time, penalties, suspended, postponed
    cancelled  <- scheduled, postponed     (a match that never took place)

    * a skipped poll: the match kicked off and was stopped between two polls.

Terminal: ``finished``, ``cancelled``, ``abandoned`` (``TERMINAL_STATUSES``).
A same-status "move" is a legal no-op. ``suspended`` does not remember where
the match stopped, so a resume may land on any in-play status.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from livescore.errors import PipelineError
from livescore.model import TERMINAL_STATUSES, MatchStatus

S = MatchStatus

#: The natural order of a match; forward jumps along it are legal.
NATURAL_ORDER: tuple[MatchStatus, ...] = (
    S.SCHEDULED,
    S.LIVE,
    S.HALFTIME,
    S.EXTRA_TIME,
    S.PENALTIES,
    S.FINISHED,
)

_IN_PLAY = frozenset({S.LIVE, S.HALFTIME, S.EXTRA_TIME, S.PENALTIES})
_FROM_SCHEDULED = frozenset(
    {S.LIVE, S.HALFTIME, S.EXTRA_TIME, S.PENALTIES, S.FINISHED}
    | {S.POSTPONED, S.SUSPENDED, S.CANCELLED, S.ABANDONED}
)

#: Every legal move (besides the same-status no-op), spelled out.
TRANSITIONS: Mapping[MatchStatus, frozenset[MatchStatus]] = MappingProxyType(
    {
        S.SCHEDULED: _FROM_SCHEDULED,
        S.LIVE: frozenset({S.HALFTIME, S.EXTRA_TIME, S.PENALTIES, S.FINISHED})
        | {S.SUSPENDED, S.ABANDONED},
        S.HALFTIME: frozenset({S.LIVE, S.EXTRA_TIME, S.PENALTIES, S.FINISHED})
        | {S.SUSPENDED, S.ABANDONED},
        S.EXTRA_TIME: frozenset({S.PENALTIES, S.FINISHED, S.SUSPENDED, S.ABANDONED}),
        S.PENALTIES: frozenset({S.FINISHED, S.SUSPENDED, S.ABANDONED}),
        S.SUSPENDED: _IN_PLAY | {S.FINISHED, S.POSTPONED, S.ABANDONED},
        S.POSTPONED: (_FROM_SCHEDULED - {S.POSTPONED}) | {S.SCHEDULED},
        S.FINISHED: frozenset(),
        S.CANCELLED: frozenset(),
        S.ABANDONED: frozenset(),
    }
)


class IllegalTransition(PipelineError):
    """A status move the state machine refuses (e.g. ``finished -> live``)."""

    def __init__(self, old: MatchStatus, new: MatchStatus) -> None:
        self.old = old
        self.new = new
        allowed = ", ".join(sorted(TRANSITIONS[old])) or "nothing"
        if old in TERMINAL_STATUSES:
            hint = (
                f"{old} is terminal; to correct it use an override "
                f"(`livescore override status MATCH {new} --reason ...`)"
            )
        else:
            hint = f"from {old} a match may move to: {allowed}"
        super().__init__(f"illegal status move {old} -> {new}: {hint}")


def legal_moves(old: MatchStatus) -> frozenset[MatchStatus]:
    """The statuses ``old`` may move to, itself included (the no-op)."""
    return TRANSITIONS[old] | {old}


def can_move(old: MatchStatus, new: MatchStatus) -> bool:
    """True when a provider may move a match from ``old`` to ``new``."""
    return old == new or new in TRANSITIONS[old]


def check_move(old: MatchStatus, new: MatchStatus) -> None:
    """Raise ``IllegalTransition`` unless ``old -> new`` is legal."""
    if not can_move(old, new):
        raise IllegalTransition(old, new)
