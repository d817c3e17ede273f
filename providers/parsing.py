"""Shared, pure helpers for normalizing provider JSON.

Adapters read payloads through ``providers.cursor.Cursor`` (never raw dicts)
and turn what they read into canonical values with the helpers here.

Conventions shared by every adapter:

* Numbers may arrive as JSON numbers or as strings; ``""`` and ``null`` mean
  "not known" (``None``). Scores must lie in ``0..SCORE_MAX``, minutes in
  ``0..MINUTE_MAX`` and added time in ``0..ADDED_MAX``; anything else is a
  ``PayloadError`` (a score of 10**30 is a broken feed, not a result).
* Timestamps end up timezone-aware UTC. Offset-less values are read in the
  zone each adapter names (documented in the adapter's module docstring).
* Minutes like ``"90+6"``, ``"45'+5'"`` and ``"90'"`` become ``(minute,
  added_time)``; a clock past the end of its period with no added time
  (``93`` in the second half) becomes ``90+3``.
* Own goals are credited to the team that benefits (``side``); the player's
  own team is kept in ``metadata["player_side"]`` where the feed says it.
* Events without a provider id get a deterministic key:
  ``provider:match:type[.so]:side:minute[+added]:ordinal`` where ``ordinal``
  counts earlier events of the same (type, side, minute, added) in the same
  response, in the provider's order. Re-parsing the same payload gives the
  same keys; two identical-looking events in one match get different keys.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from livescore.model import (
    SCORING_EVENT_TYPES,
    Clock,
    EventObservation,
    EventType,
    Period,
    ScoreLine,
    Side,
)
from providers.base import FeedConfig

SCORE_MAX = 999
MINUTE_MAX = 200
ADDED_MAX = 99
#: Earliest/latest year a kickoff or update time may carry.
YEAR_RANGE = (1900, 2200)

_INT_RE = re.compile(r"[+-]?\d{1,12}")
_MINUTE_RE = re.compile(r"(\d{1,3})\s*'?\s*(?:\+\s*(\d{1,3})\s*'?)?")
#: A minute with a minus sign ("-5", "-5'", "- 3"): a broken clock, never "not a minute".
_NEGATIVE_RE = re.compile(r"\s*[-\u2212]\s*\d")
_PERIOD_END: dict[Period, int] = {
    Period.FIRST_HALF: 45,
    Period.SECOND_HALF: 90,
    Period.EXTRA_TIME: 120,
}


def describe(value: object) -> str:
    """A short description of a JSON value for error messages: ``str 'x'``."""
    if value is None:
        return "null"
    if isinstance(value, dict):
        return f"object with {len(value)} keys"
    if isinstance(value, list):
        return f"list of {len(value)} items"
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"


def int_or_none(value: object) -> int | None:
    """An int from a JSON number or numeric string; ``None``/``""`` give None.

    Raises ``ValueError`` (with a readable message) for anything else.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"expected int, got {describe(value)}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if _INT_RE.fullmatch(text):
            return int(text)
    raise ValueError(f"expected int, got {describe(value)}")


def parse_minute(text: str) -> tuple[int | None, int | None]:
    """``"90+6"`` / ``"45'+5'"`` / ``"90'"`` / ``"45"`` -> (minute, added time).

    An empty string gives ``(None, None)``; anything else raises ``ValueError``.
    """
    stripped = text.strip()
    if not stripped:
        return None, None
    match = _MINUTE_RE.fullmatch(stripped)
    if match is None:
        if _NEGATIVE_RE.match(stripped):
            raise ValueError(f"expected a minute in 0..{MINUTE_MAX}, got {describe(text)}")
        raise ValueError(f"expected a minute like 90+6, got {describe(text)}")
    added = int(match.group(2)) if match.group(2) is not None else None
    return int(match.group(1)), added


def try_parse_minute(text: str | None) -> tuple[int | None, int | None] | None:
    """Like ``parse_minute`` but None when ``text`` is not a minute ("HT", "FT").

    A negative minute ("-5'") is no "HT": it raises ``ValueError`` like any
    other bad value instead of passing for "no minute here".
    """
    if text is None:
        return None
    if _NEGATIVE_RE.match(text):
        return parse_minute(text)  # raises
    try:
        return parse_minute(text)
    except ValueError:
        return None


def parse_timestamp(text: str, naive_zone: tzinfo | None) -> datetime:
    """An ISO 8601 timestamp as aware UTC.

    Offset-less values are read as wall time in ``naive_zone`` (the adapter's
    documented rule); with ``naive_zone=None`` they are refused.
    """
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValueError(f"expected an ISO 8601 timestamp, got {describe(text)}") from exc
    if parsed.tzinfo is None:
        if naive_zone is None:
            raise ValueError(f"timestamp {text!r} has no UTC offset")
        parsed = parsed.replace(tzinfo=naive_zone)
    return to_utc(parsed)


def to_utc(value: datetime) -> datetime:
    """``value`` in UTC, refusing years outside ``YEAR_RANGE``."""
    if not YEAR_RANGE[0] <= value.year <= YEAR_RANGE[1]:
        raise ValueError(f"timestamp year {value.year} is out of range")
    return value.astimezone(UTC)


@lru_cache(maxsize=8)
def local_zone(name: str) -> tzinfo | None:
    """The IANA zone ``name``, or None if this machine has no tz database."""
    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError:
        return None


def plausible_update(
    value: datetime | None, fetched_at: datetime, skew: timedelta = timedelta(minutes=5)
) -> datetime | None:
    """``value`` unless it lies in the future of the response (then None).

    Providers' "last updated" stamps are advisory; one later than the moment we
    received the response is wrong and must not order observations.
    """
    if value is None:
        return None
    if fetched_at.tzinfo is None:
        fetched_at = fetched_at.replace(tzinfo=UTC)
    return value if value <= fetched_at + skew else None


def normalize_clock(minute: int | None, added: int | None, period: Period | None) -> Clock:
    """A ``Clock`` with stoppage time split out of minutes past a period's end."""
    end = _PERIOD_END.get(period) if period else None
    if minute is not None and not added and end is not None and minute > end:
        minute, added = end, minute - end
    return Clock(minute=minute, added_time=added, period=period)


def add_lines(first: ScoreLine | None, second: ScoreLine | None) -> ScoreLine | None:
    """``first + second`` (a missing or unknown operand counts as 0-0)."""
    if first is None or not first.is_known():
        return None
    if second is None or not second.is_known():
        return first
    assert first.home is not None and first.away is not None
    assert second.home is not None and second.away is not None
    return ScoreLine(first.home + second.home, first.away + second.away)


def subtract_lines(total: ScoreLine, part: ScoreLine) -> ScoreLine | None:
    """``total - part``, or None if either is unknown or the result is negative."""
    if not (total.is_known() and part.is_known()):
        return None
    assert total.home is not None and total.away is not None
    assert part.home is not None and part.away is not None
    home, away = total.home - part.home, total.away - part.away
    return ScoreLine(home, away) if home >= 0 and away >= 0 else None


def goals_agree(events: Iterable[EventObservation], home: int | None, away: int | None) -> bool:
    """True when the events' goals add up to the score (shoot-out and retracted excluded)."""
    counts: Counter[str | None] = Counter(
        event.side
        for event in events
        if event.type in SCORING_EVENT_TYPES and not event.retracted and not event.shootout
    )
    if counts[None]:
        return False
    return counts["home"] == (home or 0) and counts["away"] == (away or 0)


def competition_wanted(feed: FeedConfig, *names: str | None) -> bool:
    """Whether a match of a competition known by ``names`` (id, code, name...) is
    wanted by ``feed.competitions`` (empty = every competition). Case-insensitive."""
    if not feed.competitions:
        return True
    wanted = {name.casefold() for name in feed.competitions}
    return any(name is not None and name.casefold() in wanted for name in names)


#: Longest stage key kept (a longer one is cut: it is a label, not data).
STAGE_MAX = 64
_ROUND_SUFFIX_RE = re.compile(r"\s+-\s+\d+\s*$")
_NOT_WORD_RE = re.compile(r"[^a-z0-9]+")
_GROUP_RE = re.compile(r"\bgroup[\s_-]*([a-z]|\d{1,2})\b", re.IGNORECASE)
_BARE_GROUP_RE = re.compile(r"\s*([a-z]|\d{1,2})\s*", re.IGNORECASE)


def stage_key(text: str | None) -> str | None:
    """A feed's name for a competition phase as our key: lower case, words joined
    by ``_``, a trailing round number dropped ("GROUP_STAGE" and "Group Stage - 3"
    are both ``group_stage``, "Round of 16" is ``round_of_16``). None for nothing."""
    if not text:
        return None
    key = _NOT_WORD_RE.sub("_", _ROUND_SUFFIX_RE.sub("", text).casefold()).strip("_")
    return key[:STAGE_MAX] or None


def group_label(text: str | None) -> str | None:
    """A feed's group as our label "Group X": "GROUP_A", "FIFA World Cup, Group B"
    and a bare "B" all name one; None when the text names no group."""
    if not text:
        return None
    found = _GROUP_RE.search(text) or _BARE_GROUP_RE.fullmatch(text)
    return f"Group {found.group(1).upper()}" if found else None


def event_key(
    provider: str,
    match_id: str,
    type_: EventType,
    side: Side | None,
    minute: int | None,
    added: int | None,
    ordinal: int,
    *,
    shootout: bool = False,
) -> str:
    """The deterministic key of an event that has no provider id."""
    kind = f"{type_.value}.so" if shootout else type_.value
    at = "-" if minute is None else str(minute)
    if added:
        at += f"+{added}"
    return f"{provider}:{match_id}:{kind}:{side or '-'}:{at}:{ordinal}"


class EventKeys:
    """Hands out ``event_key`` values for one match, counting ordinals."""

    def __init__(self, provider: str, match_id: str) -> None:
        self.provider = provider
        self.match_id = match_id
        self._seen: Counter[tuple[str, str | None, int | None, int | None, bool]] = Counter()

    def next(
        self,
        type_: EventType,
        side: Side | None,
        minute: int | None,
        added: int | None,
        *,
        shootout: bool = False,
    ) -> str:
        group = (type_.value, side, minute, added or None, shootout)
        ordinal = self._seen[group]
        self._seen[group] += 1
        return event_key(
            self.provider, self.match_id, type_, side, minute, added, ordinal, shootout=shootout
        )
