"""``Cursor``: a decoded JSON value together with the field path that led to it.

Every accessor that finds something unexpected raises
``PayloadError(provider, "matches[3].score.fullTime.home", "expected int, got str 'x'")``
instead of a bare ``KeyError``/``TypeError``, so adapters never index raw
dicts. The value rules (numbers as strings, ranges, minutes, timestamps) are
``providers.parsing``'s, documented there.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any, NoReturn

from livescore.model import ScoreLine, Side
from providers.errors import PayloadError
from providers.parsing import (
    ADDED_MAX,
    MINUTE_MAX,
    SCORE_MAX,
    describe,
    int_or_none,
    parse_minute,
    parse_timestamp,
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
