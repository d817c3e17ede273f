"""Free-text event kinds and period numbers (the original Live Score API's
commentary bodies) -> our ``EventType`` and ``Period``.

The original API took any string as ``eventType`` (default ``commentary``) and
a period number. ``event_kind`` maps a kind onto ours: our own names, the
spellings the provider adapters meet (football-data's ``OWN``/``YELLOW_RED``,
API-Football's ``Card``/``subst``, ESPN's ``Yellow Card``) and the usual
words (``card`` -> ``yellow``, ``sub`` -> ``substitution``); anything else is
``text`` with the kind as sent kept (``originalType``). Matching ignores case
and treats spaces and hyphens as underscores. Pure, no I/O.
"""

from __future__ import annotations

import re

from livescore.model import EventType, Period

E = EventType

#: Spellings (normalized: lower case, words joined by ``_``) -> our kind. Our own
#: values map to themselves (added below).
ALIASES: dict[str, EventType] = {
    # the original API's default kind: plain commentary
    "commentary": E.TEXT,
    "comment": E.TEXT,
    "note": E.TEXT,
    "info": E.TEXT,
    # goals (football-data: REGULAR/OWN/PENALTY goal types; ESPN/API-Football words)
    "regular": E.GOAL,
    "regular_goal": E.GOAL,
    "score": E.GOAL,
    "own": E.OWN_GOAL,
    "owngoal": E.OWN_GOAL,
    "penalty_scored": E.PENALTY_GOAL,
    "scored_penalty": E.PENALTY_GOAL,
    "penalty_missed": E.MISSED_PENALTY,
    "missed_penalty_kick": E.MISSED_PENALTY,
    "penalty_saved": E.MISSED_PENALTY,
    # cards (football-data: YELLOW, YELLOW_RED, RED; API-Football: Card)
    "card": E.YELLOW,
    "yellow_card": E.YELLOW,
    "yellowcard": E.YELLOW,
    "booking": E.YELLOW,
    "caution": E.YELLOW,
    "yellow_red": E.SECOND_YELLOW,
    "yellow_red_card": E.SECOND_YELLOW,
    "second_yellow_card": E.SECOND_YELLOW,
    "red_card": E.RED,
    "redcard": E.RED,
    "sending_off": E.RED,
    # substitutions (API-Football: subst)
    "sub": E.SUBSTITUTION,
    "subst": E.SUBSTITUTION,
    "substitute": E.SUBSTITUTION,
    # video review
    "var_decision": E.VAR,
    "var_check": E.VAR,
    "video_review": E.VAR,
    # periods
    "kickoff": E.PERIOD_START,
    "kick_off": E.PERIOD_START,
    "half_start": E.PERIOD_START,
    "start": E.PERIOD_START,
    "halftime": E.PERIOD_END,
    "half_time": E.PERIOD_END,
    "fulltime": E.PERIOD_END,
    "full_time": E.PERIOD_END,
    "end": E.PERIOD_END,
}
ALIASES.update({kind.value: kind for kind in EventType})

#: The original API's period numbers -> our clock period: 1 and 2 the halves,
#: 3 and 4 the halves of extra time, 5 the shoot-out.
PERIOD_NUMBERS: dict[int, Period] = {
    1: Period.FIRST_HALF,
    2: Period.SECOND_HALF,
    3: Period.EXTRA_TIME,
    4: Period.EXTRA_TIME,
    5: Period.PENALTIES,
}

_SEPARATORS = re.compile(r"[\s\-]+")


def normalize(kind: str) -> str:
    """``"Yellow Card"`` -> ``"yellow_card"`` (case and separators ignored)."""
    return _SEPARATORS.sub("_", kind.strip().casefold()).strip("_")


def event_kind(kind: str | None) -> tuple[EventType, str | None]:
    """Our kind for a free-text one, and the original to keep (None when the text
    is our own name for it, or when no kind was given: ``text``)."""
    if kind is None:
        return E.TEXT, None
    mapped = ALIASES.get(normalize(kind))
    if mapped is not None and kind == mapped.value:
        return mapped, None
    return (mapped or E.TEXT), kind


def period_of(value: int | str) -> Period:
    """A period number (1..5) or our own period name -> our clock period
    (KeyError/ValueError for anything else: the request kind checks first)."""
    if isinstance(value, int):
        return PERIOD_NUMBERS[value]
    if value.isdigit():
        return PERIOD_NUMBERS[int(value)]
    return Period(value)
