"""Request bodies, declared once: the validator and the OpenAPI schemas both read
these declarations.

Each JSON body the API accepts is a dataclass (``NewMatchBody``,
``NewEventBody``) whose fields are declared with
``field(metadata=declare(...))``: the JSON name, the kind of value with its
bounds (``Text``, ``Integer``, ``Choice``, ``Timestamp``, ``NameOrId``,
``SideOrId``, ``JsonObject``), whether it is required, an alias, a
description. ``parse`` validates a body against a
declaration and collects *every* problem into one 422 ``validation_failed``
(``details.errors[] = {"field", "message"}``); ``json_schema`` renders the
same declaration as the JSON Schema that ``edge/openapi.py`` publishes. A limit
or a pattern is written in one place, so the document cannot be looser or
stricter than the code by accident; tests/edge/test_request_models.py checks
that they agree at every declared bound.

Why our own small spec rather than pydantic or msgspec:

* msgspec stops at the first error; the API lists every problem of a body.
* pydantic collects errors, but its messages, its JSON Schema and its notion of
  a string (``"10"`` for an int in lax mode, ``1.0`` as an int, no "non-blank")
  all differ from today's contract; matching the API's messages would mean a
  translation layer per error type plus a 2 MB compiled dependency.
* Two bodies of at most eight fields need seven kinds of value, ``parse`` and
  ``json_schema``: plain ``isinstance`` checks, no dependency, the same
  messages clients already get. A body takes 4.5 to 6 µs, within a
  microsecond of the hand-written checks this replaced (most of it is
  ``metadata``'s bounds and the team-name comparison, there before too).

Some rules JSON Schema cannot say (years 1900 to 2200 after the UTC offset is
applied; ``metadata`` depth, encoded size and number range; ``endTime`` after
``startTime``; two different teams) are enforced by the validator and written
into the schema's ``description`` from the same declaration. Body rules that
need the database (does this team id exist, does it play in this match) stay
in the routes.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any, ClassVar, TypeVar

import orjson

from edge.errors import ValidationFailed
from edge.validation import MAX_ID
from livescore.event_kinds import PERIOD_NUMBERS, period_of
from livescore.limits import (
    MAX_EVENT_KIND_CHARS,
    MAX_JSON_DEPTH,
    MAX_MESSAGE_CHARS,
    MAX_METADATA_BYTES,
    MAX_NAME_CHARS,
    MAX_REASON_CHARS,
    MAX_TAG_CHARS,
    MAX_TAGS,
    LimitExceeded,
    check_json_depth,
)
from livescore.model import MatchStatus, Period
from livescore.names import name_key

#: Bound on numbers inside free-form JSON (metadata): 2**63, about 9.2e18.
NUMBER_LIMIT = 2**63
LIMIT_TEXT = "9.2e18"

#: What ``str.strip()`` removes (``str.isspace``), the characters a non-blank text
#: needs one besides; a test checks it against Python's own definition.
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)


def _char_class(chars: str) -> str:
    """A regex class body for ``chars``, runs as ranges, each character a \\uXXXX
    escape (JSON Schema regexes are ECMA 262; every whitespace character is in the BMP)."""
    codes = sorted(map(ord, chars))
    runs: list[list[int]] = []
    for code in codes:
        if runs and code == runs[-1][1] + 1:
            runs[-1][1] = code
        else:
            runs.append([code, code])
    return "".join(
        f"\\u{low:04x}" if low == high else f"\\u{low:04x}-\\u{high:04x}" for low, high in runs
    )


#: Non-blank (a character besides ``WHITESPACE``) and no NUL: the validator's rule
#: for free text, spelled for JSON Schema.
NON_BLANK = f"^[^\\u0000]*[^\\u0000{_char_class(WHITESPACE)}][^\\u0000]*$"


class Invalid(ValueError):
    """A value breaks its field's rule; the message says which (no field name)."""


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` that also accepts null (an optional field may be sent as null)."""
    if "enum" in schema:
        return {**schema, "enum": [*schema["enum"], None]}
    if "oneOf" in schema:
        return {**schema, "oneOf": [*schema["oneOf"], {"type": "null"}]}
    if "anyOf" in schema:
        return {**schema, "anyOf": [*schema["anyOf"], {"type": "null"}]}
    return {**schema, "type": [schema["type"], "null"]}


# -- kinds of value -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Text:
    """A non-blank string of at most ``max_len`` characters, without NUL, matching
    ``pattern`` (unanchored: the whole string must match) if given; parsed stripped."""

    max_len: int
    pattern: str | None = None
    required_message: ClassVar[str] = "is required"

    def check(self, name: str, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise Invalid("must be a non-empty string")
        if len(value) > self.max_len:
            raise Invalid(f"must be at most {self.max_len} characters")
        if "\x00" in value:
            raise Invalid("must not contain NUL characters")
        if self.pattern is not None and not _regex(self.pattern).fullmatch(value):
            raise Invalid(f"must match {self.pattern}")
        return value.strip()

    def schema(self) -> dict[str, Any]:
        if self.pattern is None:
            return {
                "type": "string",
                "minLength": 1,
                "maxLength": self.max_len,
                "pattern": NON_BLANK,
            }
        # a pattern of our own must never match blank text or NUL (the tests check it):
        # then it is the whole rule
        anchored = f"(?:{self.pattern})" if "|" in self.pattern else self.pattern
        return {"type": "string", "maxLength": self.max_len, "pattern": f"^{anchored}$"}


_regex = cache(re.compile)


@dataclass(frozen=True, slots=True)
class Integer:
    """A JSON integer (not a boolean, not ``1.0``) from ``low`` to ``high``; with
    ``digits`` (a regex naming exactly the decimal spellings of that range, no
    leading zeros), the same number written as a string too (the original API
    converted numeric strings)."""

    low: int
    high: int
    format: str | None = None
    digits: str | None = None
    required_message: ClassVar[str] = "is required"

    def check(self, name: str, value: Any) -> int:
        if (
            self.digits is not None
            and isinstance(value, str)
            and _regex(self.digits).fullmatch(value)
        ):
            value = int(value)
        if type(value) is not int or not self.low <= value <= self.high:
            strings = " (a number or its digits as a string)" if self.digits else ""
            raise Invalid(f"must be a whole number from {self.low} to {self.high}{strings}")
        return value

    def schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "integer", "minimum": self.low, "maximum": self.high}
        if self.format is not None:
            schema["format"] = self.format
        if self.digits is not None:
            return {"oneOf": [schema, {"type": "string", "pattern": f"^(?:{self.digits})$"}]}
        return schema


#: A canonical id: PostgreSQL's bigint from 1.
ID = Integer(1, MAX_ID, format="int64")


@dataclass(frozen=True, slots=True)
class Choice:
    """One of a fixed set of strings."""

    choices: tuple[str, ...]
    required_message: ClassVar[str] = "is required"

    def check(self, name: str, value: Any) -> str:
        if not isinstance(value, str) or value not in self.choices:
            raise Invalid(f"must be one of {', '.join(self.choices)}")
        return value

    def schema(self) -> dict[str, Any]:
        return {"enum": list(self.choices)}


@dataclass(frozen=True, slots=True)
class Timestamp:
    """An ISO 8601 date-time with a UTC offset, in the years ``first_year`` to
    ``last_year`` once converted to UTC."""

    max_len: int = 64
    first_year: int = 1900
    last_year: int = 2200
    required_message: ClassVar[str] = "is required"

    def check(self, name: str, value: Any) -> datetime:
        if not isinstance(value, str) or len(value) > self.max_len:
            raise Invalid("must be an ISO 8601 date-time string with a UTC offset")
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise Invalid(f"{value!r} is not an ISO 8601 date-time") from None
        if parsed.tzinfo is None:
            raise Invalid("needs a UTC offset (e.g. 2026-11-26T20:00:00Z)")
        try:
            year = parsed.astimezone(UTC).year
        except OverflowError:  # year 1 or 9999 pushed past the calendar by its offset
            year = 0
        if not self.first_year <= year <= self.last_year:
            raise Invalid(f"must be between the years {self.first_year} and {self.last_year}")
        return parsed

    def schema(self) -> dict[str, Any]:
        return {
            "type": "string",
            "format": "date-time",
            "maxLength": self.max_len,
            "description": (
                "with a UTC offset (any ISO 8601 date-time with an offset is accepted); "
                f"between the years {self.first_year} and {self.last_year} in UTC"
            ),
        }


@dataclass(frozen=True, slots=True)
class NameOrId:
    """A reference by canonical id (integer) or by name (string)."""

    name: Text = Text(MAX_NAME_CHARS)
    id: Integer = ID
    required_message: ClassVar[str] = "is required (a name or an id)"

    def check(self, name: str, value: Any) -> str | int:
        if type(value) is int:
            return self.id.check(name, value)
        if isinstance(value, str):
            return self.name.check(name, value)
        raise Invalid("must be a name (string) or an id (integer)")

    def schema(self) -> dict[str, Any]:
        return {"oneOf": [self.id.schema(), self.name.schema()]}


@dataclass(frozen=True, slots=True)
class SideOrId:
    """``home``, ``away`` or a team id, or with ``name`` also a team's name (that
    it plays in the match is the route's check: it needs the match)."""

    sides: tuple[str, ...] = ("home", "away")
    id: Integer = ID
    name: Text | None = None
    required_message: ClassVar[str] = "is required"

    def check(self, name: str, value: Any) -> str | int:
        if isinstance(value, str) and value in self.sides:
            return value
        if type(value) is int and self.id.low <= value <= self.id.high:
            return value
        if self.name is not None and isinstance(value, str):
            return self.name.check(name, value)
        names = ", a team's name" if self.name is not None else ""
        raise Invalid(
            f"must be {', '.join(repr(s) for s in self.sides)}{names} or the id of one of "
            "the match's teams"
        )

    def schema(self) -> dict[str, Any]:
        if self.name is not None:  # "home" is a fine name too: any of them, not one of them
            return {"anyOf": [{"enum": list(self.sides)}, self.id.schema(), self.name.schema()]}
        return {"oneOf": [{"enum": list(self.sides)}, self.id.schema()]}


@dataclass(frozen=True, slots=True)
class PeriodRef:
    """A clock period: the original API's period number (1, 2: the halves; 3, 4: the
    halves of extra time; 5: penalties; as a number or its digit) or our own name."""

    numbers: tuple[int, ...] = tuple(PERIOD_NUMBERS)
    names: tuple[str, ...] = tuple(p.value for p in Period)
    required_message: ClassVar[str] = "is required"

    def check(self, name: str, value: Any) -> Period:
        if type(value) is int and value in self.numbers:
            return period_of(value)
        if isinstance(value, str) and (value in self.names or value in map(str, self.numbers)):
            return period_of(value)
        raise Invalid(
            "must be a period number (1, 2: the halves; 3, 4: extra time; 5: penalties) "
            f"or one of {', '.join(self.names)}"
        )

    def schema(self) -> dict[str, Any]:
        return {
            "enum": [*self.numbers, *map(str, self.numbers), *self.names],
            "description": (
                "1 -> 1H, 2 -> 2H, 3 and 4 -> ET, 5 -> PEN (numbers or digit strings), "
                "or the period's own name; 1.0 is not a period number"
            ),
        }


@dataclass(frozen=True, slots=True)
class TextList:
    """A JSON array of at most ``max_items`` texts, each an ``item``."""

    item: Text
    max_items: int
    required_message: ClassVar[str] = "is required"

    def check(self, name: str, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise Invalid("must be an array of strings")
        if len(value) > self.max_items:
            raise Invalid(f"must hold at most {self.max_items} items")
        checked: list[str] = []
        for index, item in enumerate(value):
            try:
                checked.append(self.item.check(name, item))
            except Invalid as exc:
                raise Invalid(f"item {index} {exc}") from None
        return tuple(checked)

    def schema(self) -> dict[str, Any]:
        return {"type": "array", "items": self.item.schema(), "maxItems": self.max_items}


def _numbers_fit(value: Any, limit: int) -> bool:
    """True when every number in a JSON value lies strictly within ±``limit``."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return True
    if isinstance(value, int | float):
        return abs(value) < limit
    if isinstance(value, dict):
        return all(_numbers_fit(v, limit) for v in value.values())
    if isinstance(value, list):
        return all(_numbers_fit(v, limit) for v in value)
    return False


@dataclass(frozen=True, slots=True)
class JsonObject:
    """Free-form JSON (metadata), bounded so every change holding it can be stored
    and published: ``max_depth`` levels, ``max_bytes`` encoded, no NUL, numbers
    strictly within ±``number_limit`` (JSONB keeps 1e30 exactly and hands it back as
    a 31-digit integer, which no 64-bit JSON encoder, nor the WebSocket frame, can
    carry)."""

    max_depth: int = MAX_JSON_DEPTH
    max_bytes: int = MAX_METADATA_BYTES
    number_limit: int = NUMBER_LIMIT
    number_text: str = LIMIT_TEXT
    required_message: ClassVar[str] = "is required"

    def check(self, name: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise Invalid("must be a JSON object")
        try:
            check_json_depth(value, name, limit=self.max_depth)
        except LimitExceeded as exc:
            raise Invalid(str(exc)) from None
        encoded = orjson.dumps(value)
        if len(encoded) > self.max_bytes:
            raise Invalid(f"is {len(encoded)} bytes as JSON; at most {self.max_bytes} are accepted")
        if b"\\u0000" in encoded:
            raise Invalid("must not contain NUL characters (PostgreSQL cannot store them)")
        if not _numbers_fit(value, self.number_limit):
            raise Invalid(
                f"numbers must lie strictly between -{self.number_text} and {self.number_text}"
            )
        return value

    def schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "description": (
                f"numbers within ±{self.number_text}, at most {self.max_depth} levels deep "
                f"and {self.max_bytes} bytes as JSON, no NUL"
            ),
        }


Kind = Text | Integer | Choice | Timestamp | NameOrId | SideOrId | JsonObject | PeriodRef | TextList


# -- declarations -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Spec:
    """One body field as declared: its JSON name, kind, and what the document says."""

    json: str
    kind: Kind
    required: bool
    description: str
    alias: str | None
    example: Any


def declare(
    kind: Kind,
    *,
    json: str,
    required: bool = False,
    description: str = "",
    alias: str | None = None,
    example: Any = None,
) -> dict[str, Spec]:
    """A body field's declaration, as ``field(metadata=declare(...))`` (an absent
    field and ``null`` are the same: ``None``)."""
    return {"spec": Spec(json, kind, required, description, alias, example)}


#: A rule over several fields: the parsed values by attribute name (None where
#: absent or invalid) -> (field, message) for each problem.
Rule = Callable[[Mapping[str, Any]], Iterable[tuple[str, str]]]


class Body:
    """Base of the body declarations; ``rules`` run after the fields are parsed."""

    __slots__ = ()
    rules: ClassVar[tuple[Rule, ...]] = ()


B = TypeVar("B", bound=Body)


@dataclass(frozen=True, slots=True)
class _Compiled:
    fields: tuple[tuple[str, Spec], ...]
    accepted: frozenset[str]
    allowed_text: str


_COMPILED: dict[type[Body], _Compiled] = {}


def _compiled(cls: type[Body]) -> _Compiled:
    compiled = _COMPILED.get(cls)
    if compiled is None:
        fields = tuple((f.name, f.metadata["spec"]) for f in dataclasses.fields(cls))  # type: ignore[arg-type]
        names = [spec.json for _, spec in fields]
        aliases = [spec.alias for _, spec in fields if spec.alias is not None]
        allowed = ", ".join(sorted(names))
        compiled = _COMPILED[cls] = _Compiled(fields, frozenset((*names, *aliases)), allowed)
    return compiled


def invalid(errors: list[dict[str, str]]) -> ValidationFailed:
    """The one 422 for a body: every problem in ``details.errors``."""
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:3])
    return ValidationFailed(f"the body is invalid: {summary}", details={"errors": errors})


def parse(cls: type[B], body: Mapping[str, Any]) -> B:
    """``body`` (a JSON object) checked against ``cls``'s declaration: the parsed
    instance, or a 422 listing every problem (unknown fields included)."""
    compiled = _compiled(cls)
    errors: list[dict[str, str]] = []
    if not compiled.accepted.issuperset(body):
        for name in body:
            if name not in compiled.accepted:
                message = f"unknown field; allowed: {compiled.allowed_text}"
                errors.append({"field": name, "message": message})
    values: dict[str, Any] = {}
    for attr, spec in compiled.fields:
        value = body.get(spec.json)
        if spec.alias is not None and spec.alias in body:
            if spec.json in body:
                message = f"give {spec.json} or its alias {spec.alias}, not both"
                errors.append({"field": spec.alias, "message": message})
            else:
                value = body[spec.alias]
        parsed = None
        if value is None:
            if spec.required:
                errors.append({"field": spec.json, "message": spec.kind.required_message})
        else:
            try:
                parsed = spec.kind.check(spec.json, value)
            except Invalid as exc:
                errors.append({"field": spec.json, "message": str(exc)})
        values[attr] = parsed
    for rule in cls.rules:
        errors.extend({"field": field, "message": message} for field, message in rule(values))
    if errors:
        raise invalid(errors)
    return cls(**values)


def json_schema(cls: type[Body]) -> dict[str, Any]:
    """The JSON Schema of ``cls``'s bodies (what ``parse`` accepts, as far as JSON
    Schema can say it; the rest is in the descriptions)."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    exclusive: list[dict[str, Any]] = []
    for _, spec in _compiled(cls).fields:
        schema = spec.kind.schema()
        notes = [n for n in (spec.description, schema.pop("description", "")) if n]
        if not spec.required:
            schema = _nullable(schema)
        if notes:
            schema["description"] = "; ".join(notes)
        if spec.example is not None:
            schema["example"] = spec.example
        properties[spec.json] = schema
        if spec.alias is None:
            if spec.required:
                required.append(spec.json)
            continue
        properties[spec.alias] = {**schema, "description": f"alias of {spec.json}"}
        pair = [spec.json, spec.alias]
        if spec.required:  # exactly one of the two
            exclusive.append({"oneOf": [{"required": [pair[0]]}, {"required": [pair[1]]}]})
        else:  # at most one
            exclusive.append({"not": {"required": pair}})
    schema = {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
    if len(exclusive) == 1:
        schema.update(exclusive[0])
    elif exclusive:
        schema["allOf"] = exclusive
    if cls.__doc__:
        schema["description"] = " ".join(cls.__doc__.split())
    return schema


# -- the bodies ---------------------------------------------------------------------------

SPORT = "[a-z][a-z0-9_-]{0,31}"


def _match_rules(values: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    start, end = values["start_time"], values["end_time"]
    if start is not None and end is not None and end <= start:
        yield "endTime", "must be after startTime"
    home, away = values["home_team"], values["away_team"]
    if home is not None and away is not None and _same_team(home, away):
        yield "awayTeam", "must be a different team from homeTeam"


def _same_team(home: str | int, away: str | int) -> bool:
    if isinstance(home, str) and isinstance(away, str):
        return name_key(home) == name_key(away)
    return home == away


_TEAM = "a canonical id, or a name (an unknown name creates the row)"
_SIDE = (
    "home, away, the id of one of the match's two teams, or either team's name "
    "(any spelling the team is known by, case-insensitive); for an own goal, the team "
    "the goal counts for"
)
_INITIAL = "the initial score (default 0), written as the match's first change"
#: A score: 0..999, also as its digits (the original API converted numeric strings).
SCORE = Integer(0, 999, digits="0|[1-9][0-9]{0,2}")
#: Free-text event kinds: ours, or any other (mapped, else kept as ``originalType``).
EVENT_KIND = Text(MAX_EVENT_KIND_CHARS)
#: Tags on an event: at most 20, each up to 50 characters.
TAGS = TextList(Text(MAX_TAG_CHARS), MAX_TAGS)
#: The original API's ordering number on an event (a PostgreSQL integer from 0).
SEQUENCE = Integer(0, 2**31 - 1)
_KIND = (
    "any text (default text): our kinds as they are; known spellings mapped "
    "(card -> yellow, red_card -> red, sub/subst -> substitution, own -> own_goal, "
    "commentary -> text; see README); anything else stored as text with the kind kept "
    "in originalType"
)


@dataclass(slots=True)
class NewMatchBody(Body):
    """POST /api/matches: a new match, its teams and competition by id or by name."""

    sport: str = field(
        metadata=declare(Text(32, SPORT), json="sport", required=True, example="football")
    )
    home_team: str | int = field(
        metadata=declare(NameOrId(), json="homeTeam", required=True, description=_TEAM)
    )
    away_team: str | int = field(
        metadata=declare(
            NameOrId(), json="awayTeam", required=True, description=f"{_TEAM}; not homeTeam"
        )
    )
    start_time: datetime = field(metadata=declare(Timestamp(), json="startTime", required=True))
    end_time: datetime | None = field(
        metadata=declare(Timestamp(), json="endTime", description="after startTime")
    )
    competition: str | int | None = field(
        metadata=declare(NameOrId(), json="competition", description=_TEAM)
    )
    home_score: int | None = field(
        metadata=declare(SCORE, json="homeScore", description=_INITIAL, example=0)
    )
    away_score: int | None = field(
        metadata=declare(SCORE, json="awayScore", description=_INITIAL, example=0)
    )

    rules: ClassVar[tuple[Rule, ...]] = (_match_rules,)


@dataclass(slots=True)
class NewEventBody(Body):
    """POST /api/matches/{id}/commentary: one event (the original Live Score API's
    body is accepted as it is: eventType free text, period number, sequence, tags,
    team by name)."""

    minute: int = field(metadata=declare(Integer(0, 200), json="minute", required=True))
    added_time: int | None = field(metadata=declare(Integer(0, 60), json="addedTime"))
    event_type: str | None = field(
        metadata=declare(EVENT_KIND, json="type", alias="eventType", description=_KIND)
    )
    message: str = field(metadata=declare(Text(MAX_MESSAGE_CHARS), json="message", required=True))
    actor: str | None = field(metadata=declare(Text(MAX_NAME_CHARS), json="actor"))
    metadata: dict[str, Any] | None = field(
        metadata=declare(
            JsonObject(), json="metadata", description="free-form (assist, players, VAR outcome)"
        )
    )
    team: str | int | None = field(
        metadata=declare(SideOrId(name=Text(MAX_NAME_CHARS)), json="team", description=_SIDE)
    )
    period: Period | None = field(
        metadata=declare(PeriodRef(), json="period", description="stored as our clock period")
    )
    sequence: int | None = field(
        metadata=declare(SEQUENCE, json="sequence", description="the client's own order, kept")
    )
    tags: tuple[str, ...] | None = field(
        metadata=declare(TAGS, json="tags", description="the client's labels, kept")
    )
    retracts: int | None = field(
        metadata=declare(
            ID,
            json="retracts",
            description=(
                "the id of an earlier event of this match that this one cancels (a VAR "
                "decision): it is marked retracted, and a retracted goal leaves the score "
                "of a match no feed covers"
            ),
        )
    )


_PATCH_FIELDS = ("homeScore", "awayScore", "status", "minute", "addedTime", "period")


@dataclass(slots=True)
class MatchUpdateBody(Body):
    """PATCH /api/matches/{id}: the scorer's update (at least one of homeScore,
    awayScore, status, minute, addedTime, period). Audited with the API key's name; on a
    match a feed covers it is an override (pins the match until DELETE
    /api/matches/{id}/override). Status moves follow the status state machine."""

    home_score: int | None = field(
        metadata=declare(SCORE, json="homeScore", description="awayScore stays if not given")
    )
    away_score: int | None = field(
        metadata=declare(SCORE, json="awayScore", description="homeScore stays if not given")
    )
    status: str | None = field(
        metadata=declare(
            Choice(tuple(s.value for s in MatchStatus)),
            json="status",
            description="a legal move from the current status (else 409 illegal_transition)",
        )
    )
    minute: int | None = field(metadata=declare(Integer(0, 200), json="minute"))
    added_time: int | None = field(
        metadata=declare(
            Integer(0, 60), json="addedTime", description="cleared when minute is given alone"
        )
    )
    period: Period | None = field(
        metadata=declare(
            PeriodRef(), json="period", description="default: what the new status implies"
        )
    )
    reason: str | None = field(
        metadata=declare(
            Text(MAX_REASON_CHARS), json="reason", description="kept in the audit trail"
        )
    )

    def given(self) -> bool:
        """True when it asks for any change (``reason`` alone asks for none)."""
        values = (self.home_score, self.away_score, self.status, self.minute)
        return any(v is not None for v in (*values, self.added_time, self.period))
