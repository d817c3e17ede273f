"""Shared, pure helpers for normalizing provider JSON.

``Cursor`` wraps a decoded JSON value together with its field path, so every
accessor that finds something unexpected raises
``PayloadError(provider, "matches[3].score.fullTime.home", "expected int, got str 'x'")``
instead of a bare ``KeyError``/``TypeError``. Adapters never index raw dicts.

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
from typing import Any, NoReturn
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
from providers.errors import PayloadError

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


class Cursor:
    """A JSON value and the path that led to it.

    ``cursor["key"]`` requires the key; ``cursor.get("key")`` gives a null
    cursor when the key (or the object itself) is absent. Accessors named
    ``opt_*`` accept null; the others refuse it.
    """

    __slots__ = ("path", "provider", "value")

    def __init__(self, provider: str, value: Any, path: str = "") -> None:
        self.provider = provider
        self.value = value
        self.path = path

    def __repr__(self) -> str:
        return f"Cursor({self.where}={describe(self.value)})"

    @property
    def where(self) -> str:
        return self.path or "$"

    @property
    def is_null(self) -> bool:
        return self.value is None

    def fail(self, problem: str) -> NoReturn:
        raise PayloadError(self.provider, self.where, problem)

    def _child(self, key: str | int, value: Any) -> Cursor:
        if isinstance(key, int):
            return Cursor(self.provider, value, f"{self.path}[{key}]")
        return Cursor(self.provider, value, f"{self.path}.{key}" if self.path else key)

    # -- structure ---------------------------------------------------------------
    def obj(self) -> dict[str, Any]:
        if not isinstance(self.value, dict):
            self.fail(f"expected object, got {describe(self.value)}")
        return self.value

    def has(self, key: str) -> bool:
        """Whether this is an object with a non-null ``key``."""
        return isinstance(self.value, dict) and self.value.get(key) is not None

    def __getitem__(self, key: str) -> Cursor:
        obj = self.obj()
        if obj.get(key) is None:
            problem = "missing" if key not in obj else "expected a value, got null"
            self._child(key, None).fail(problem)
        return self._child(key, obj[key])

    def get(self, key: str) -> Cursor:
        if self.value is None:
            return self._child(key, None)
        return self._child(key, self.obj().get(key))

    def items(self) -> list[Cursor]:
        if not isinstance(self.value, list):
            self.fail(f"expected list, got {describe(self.value)}")
        return [self._child(index, item) for index, item in enumerate(self.value)]

    def opt_items(self) -> list[Cursor] | None:
        return None if self.value is None else self.items()

    # -- scalars -----------------------------------------------------------------
    def opt_str(self) -> str | None:
        """A string; null and blank strings give None."""
        if self.value is None:
            return None
        if not isinstance(self.value, str):
            self.fail(f"expected string, got {describe(self.value)}")
        return self.value.strip() or None

    def as_str(self) -> str:
        text = self.opt_str()
        if text is None:
            self.fail(f"expected a non-empty string, got {describe(self.value)}")
        return text

    def opt_id(self) -> str | None:
        """An identifier sent as a string or an integer."""
        if isinstance(self.value, int) and not isinstance(self.value, bool):
            return str(self.value)
        if self.value is None or isinstance(self.value, str):
            return self.opt_str()
        self.fail(f"expected an id (string or int), got {describe(self.value)}")

    def as_id(self) -> str:
        ident = self.opt_id()
        if ident is None:
            self.fail(f"expected an id, got {describe(self.value)}")
        return ident

    def opt_int(self, lo: int = 0, hi: int = SCORE_MAX) -> int | None:
        try:
            number = int_or_none(self.value)
        except ValueError as exc:
            self.fail(str(exc))
        if number is not None and not lo <= number <= hi:
            self.fail(f"expected int in {lo}..{hi}, got {number}")
        return number

    def as_int(self, lo: int = 0, hi: int = SCORE_MAX) -> int:
        number = self.opt_int(lo, hi)
        if number is None:
            self.fail(f"expected int, got {describe(self.value)}")
        return number

    def opt_float(self) -> float | None:
        if self.value is None or (isinstance(self.value, str) and not self.value.strip()):
            return None
        if isinstance(self.value, bool) or not isinstance(self.value, int | float | str):
            self.fail(f"expected number, got {describe(self.value)}")
        try:
            number = float(self.value)
        except ValueError:
            self.fail(f"expected number, got {describe(self.value)}")
        if not -1e9 < number < 1e9:  # also refuses nan and inf
            self.fail(f"expected a finite number, got {describe(self.value)}")
        return number

    def opt_bool(self) -> bool:
        """A JSON boolean; null/absent is False."""
        if self.value is None:
            return False
        if not isinstance(self.value, bool):
            self.fail(f"expected boolean, got {describe(self.value)}")
        return self.value

    def opt_scalar(self) -> str | int | float | bool | None:
        """Any JSON scalar (stats values); objects and lists are refused."""
        if self.value is None or isinstance(self.value, str | int | float | bool):
            return self.value
        self.fail(f"expected a scalar, got {describe(self.value)}")

    # -- domain values -----------------------------------------------------------
    def opt_minute(self) -> tuple[int | None, int | None]:
        """A minute sent as an int or a string like ``"90+6"``."""
        if isinstance(self.value, str):
            try:
                minute, added = parse_minute(self.value)
            except ValueError as exc:
                self.fail(str(exc))
        else:
            minute, added = self.opt_int(hi=MINUTE_MAX), None
        if minute is not None and minute > MINUTE_MAX:
            self.fail(f"expected a minute in 0..{MINUTE_MAX}, got {minute}")
        if added is not None and added > ADDED_MAX:
            self.fail(f"expected added time in 0..{ADDED_MAX}, got {added}")
        return minute, added

    def opt_timestamp(self, naive_zone: tzinfo | None = UTC) -> datetime | None:
        text = self.opt_str()
        if text is None:
            return None
        try:
            return parse_timestamp(text, naive_zone)
        except (ValueError, OverflowError) as exc:
            self.fail(str(exc))

    def as_timestamp(self, naive_zone: tzinfo | None = UTC) -> datetime:
        moment = self.opt_timestamp(naive_zone)
        if moment is None:
            self.fail(f"expected a timestamp, got {describe(self.value)}")
        return moment

    def score_line(self) -> ScoreLine | None:
        """``{"home": h, "away": a}`` -> ``ScoreLine``; null or both unknown -> None."""
        if self.value is None:
            return None
        line = ScoreLine(self.get("home").opt_int(), self.get("away").opt_int())
        return None if line.home is None and line.away is None else line

    def side(self, home_id: str, away_id: str) -> Side | None:
        """Which side a team id names; null gives None, a stranger is an error."""
        ident = self.opt_id()
        if ident is None:
            return None
        if ident == home_id:
            return "home"
        if ident == away_id:
            return "away"
        self.fail(f"team id {ident!r} is neither home {home_id!r} nor away {away_id!r}")
