"""The request-body declarations (edge/requests.py) are the one source of both the
validator and the OpenAPI schemas: the published document holds exactly what
``json_schema`` generates, and the validator and the schema agree at every
declared bound (just inside passes both, just outside fails both). Rules JSON
Schema cannot say are enforced by the validator and named in the schema's
description. In process: no server, no database."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.errors import ValidationFailed
from edge.openapi import document
from edge.requests import (
    WHITESPACE,
    Body,
    Choice,
    Integer,
    JsonObject,
    Kind,
    MatchUpdateBody,
    NameOrId,
    NewEventBody,
    NewMatchBody,
    PeriodRef,
    SideOrId,
    Spec,
    Text,
    TextList,
    Timestamp,
    json_schema,
    parse,
)

BODIES: dict[str, type[Body]] = {
    "NewMatch": NewMatchBody,
    "NewEvent": NewEventBody,
    "MatchUpdate": MatchUpdateBody,
}
VALID: dict[type[Body], dict[str, Any]] = {
    NewMatchBody: {
        "sport": "football",
        "homeTeam": "Home FC",
        "awayTeam": 7,
        "startTime": "2030-01-01T12:00:00Z",
        "endTime": "2030-01-01T14:00:00+00:00",
        "competition": "Cup",
        "homeScore": 2,
        "awayScore": "1",
    },
    NewEventBody: {
        "minute": 12,
        "addedTime": 1,
        "type": "goal",
        "message": "What a strike",
        "actor": "A. Player",
        "metadata": {"assist": "B. Player"},
        "team": "home",
        "period": 2,
        "sequence": 7,
        "tags": ["goal", "highlight"],
        "retracts": 3,
    },
    MatchUpdateBody: {
        "homeScore": 1,
        "awayScore": 0,
        "status": "live",
        "minute": 12,
        "addedTime": 0,
        "period": "1H",
        "reason": "kick-off",
    },
}


def specs(cls: type[Body]) -> list[Spec]:
    return [f.metadata["spec"] for f in dataclasses.fields(cls)]  # type: ignore[arg-type]


FIELDS = [(cls, spec) for cls in BODIES.values() for spec in specs(cls)]
FIELD_IDS = [f"{cls.__name__}.{spec.json}" for cls, spec in FIELDS]


def schema_of(cls: type[Body]) -> Any:
    return jsonschema_rs.validator_for(json_schema(cls), validate_formats=True)


def field_schema(cls: type[Body], spec: Spec) -> Any:
    return jsonschema_rs.validator_for(
        json_schema(cls)["properties"][spec.json], validate_formats=True
    )


def errors_of(cls: type[Body], body: dict[str, Any]) -> list[dict[str, str]]:
    try:
        parse(cls, body)
    except ValidationFailed as exc:
        errors: list[dict[str, str]] = exc.details["errors"]
        return errors
    return []


def field_accepts(cls: type[Body], spec: Spec, value: Any) -> bool:
    """Does the validator accept ``value`` as this field (other fields left out, so
    that neither their absence nor the cross-field rules count)?"""
    return not [e for e in errors_of(cls, {spec.json: value}) if e["field"] == spec.json]


def text_inside(kind: Text) -> str:
    """The longest text the declaration allows."""
    value = "a" * kind.max_len
    assert kind.check("x", value), "give this pattern a longest example"
    return value


def just_inside_and_outside(kind: Kind) -> Iterator[tuple[Any, bool]]:
    """(value, allowed) at each bound the declaration states."""
    if isinstance(kind, Text):
        yield text_inside(kind), True
        yield text_inside(kind) + "a", False
        yield "", False
        yield "a\x00", False
        yield 1, False
        yield "\ufeff", kind.pattern is None  # a BOM is not whitespace to str.strip
        for space in WHITESPACE:  # blank, by str.strip's definition, is refused
            yield space * 2, False
            yield f"{space}b{space}", kind.pattern is None
    elif isinstance(kind, Integer):
        yield kind.low, True
        yield kind.high, True
        yield kind.low - 1, False
        yield kind.high + 1, False
        yield True, False
        yield kind.low + 0.5, False
        yield str(kind.low), kind.digits is not None
        if kind.digits is not None:  # the digits of the range, nothing else
            yield str(kind.high), True
            yield str(kind.high + 1), False
            yield f"0{kind.high}", False
            yield f" {kind.low}", False
            yield "1e2", False
    elif isinstance(kind, Choice):
        for choice in kind.choices:
            yield choice, True
            yield choice.upper(), False
        yield "", False
        yield [kind.choices[0]], False
    elif isinstance(kind, Timestamp):
        yield f"{kind.first_year}-01-01T00:00:00Z", True
        yield f"{kind.last_year}-12-31T23:59:59Z", True
        yield "2030-01-01T12:00:00+05:30", True
        fraction = "1" * (kind.max_len - len("2030-01-01T12:00:00.Z"))
        yield f"2030-01-01T12:00:00.{fraction}Z", True  # exactly max_len characters
        yield f"2030-01-01T12:00:00.{fraction}1Z", False
        yield "2030-01-01T12:00:00", False  # no offset
        yield "soon", False
        yield 1893456000, False
    elif isinstance(kind, NameOrId):
        # each branch's cases of its own type (1 is no name but a fine id, "1" the reverse)
        yield from ((v, ok) for v, ok in just_inside_and_outside(kind.name) if isinstance(v, str))
        yield from ((v, ok) for v, ok in just_inside_and_outside(kind.id) if not isinstance(v, str))
        yield False, False
        yield ["a"], False
    elif isinstance(kind, SideOrId):
        for side in kind.sides:
            yield side, True
        yield "visitors", kind.name is not None
        if kind.name is not None:
            yield from (
                (v, ok) for v, ok in just_inside_and_outside(kind.name) if isinstance(v, str)
            )
        yield from ((v, ok) for v, ok in just_inside_and_outside(kind.id) if not isinstance(v, str))
        yield False, False
    elif isinstance(kind, PeriodRef):
        for number in kind.numbers:
            yield number, True
            yield str(number), True
        for name in kind.names:
            yield name, True
            yield name.lower(), name.lower() == name
        yield 0, False
        yield max(kind.numbers) + 1, False
        yield "6", False
        yield "first half", False
        yield True, False
    elif isinstance(kind, TextList):
        yield [], True
        yield [text_inside(kind.item)] * kind.max_items, True
        yield ["a"] * (kind.max_items + 1), False
        yield [text_inside(kind.item) + "a"], False
        yield [""], False
        yield [" "], False
        yield [1], False
        yield "a", False
        yield {"a": 1}, False
    elif isinstance(kind, JsonObject):
        nested: dict[str, Any] = {}
        for _ in range(kind.max_depth - 1):
            nested = {"a": nested}
        yield nested, True
        yield {}, True
        yield {"a": [1, 2.5, None, True, "x"]}, True
        yield [], False
        yield "x", False


def validator_only(kind: Kind) -> Iterator[tuple[Any, str]]:
    """(value refused by the validator, text the description must hold): the bounds
    JSON Schema cannot state."""
    if isinstance(kind, Timestamp):
        yield f"{kind.first_year - 1}-12-31T23:59:59Z", str(kind.first_year)
        yield f"{kind.first_year}-01-01T00:30:00+01:00", str(kind.first_year)  # 1899 in UTC
        yield f"{kind.last_year + 1}-01-01T00:00:00Z", str(kind.last_year)
    elif isinstance(kind, JsonObject):
        nested: dict[str, Any] = {}
        for _ in range(kind.max_depth):
            nested = {"a": nested}
        yield nested, f"{kind.max_depth} levels"
        yield {"a": "x" * kind.max_bytes}, f"{kind.max_bytes} bytes"
        yield {"a": "\x00"}, "NUL"
        yield {"a": kind.number_limit}, kind.number_text
        yield {"a": -float(kind.number_limit)}, kind.number_text
    elif isinstance(kind, Integer | NameOrId | SideOrId):
        yield 1.0, ""  # JSON Schema's integer includes 1.0; the API takes 1 only
    elif isinstance(kind, PeriodRef):
        yield 1.0, "1.0"  # JSON Schema's enum holds 1.0 as 1; the API takes 1 only


def test_whitespace_is_what_str_strip_removes() -> None:
    assert "".join(c for c in map(chr, range(0x110000)) if c.isspace()) == WHITESPACE


def test_the_document_publishes_the_generated_schemas() -> None:
    doc = document()
    for name, cls in BODIES.items():
        assert doc["components"]["schemas"][name] == json_schema(cls)
    paths = doc["paths"]
    for path, method, name in (
        ("/api/matches", "post", "NewMatch"),
        ("/api/matches/{id}/commentary", "post", "NewEvent"),
        ("/api/matches/{id}", "patch", "MatchUpdate"),
    ):
        body = paths[path][method]["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": f"#/components/schemas/{name}"}


@pytest.mark.parametrize(("cls", "spec"), FIELDS, ids=FIELD_IDS)
def test_validator_and_schema_agree_at_every_declared_bound(cls: type[Body], spec: Spec) -> None:
    schema = field_schema(cls, spec)
    cases = list(just_inside_and_outside(spec.kind))
    assert cases
    disagreements = [
        (value, allowed, field_accepts(cls, spec, value), schema.is_valid(value))
        for value, allowed in cases
        if not field_accepts(cls, spec, value) is schema.is_valid(value) is allowed
    ]
    assert disagreements == []


@pytest.mark.parametrize(("cls", "spec"), FIELDS, ids=FIELD_IDS)
def test_bounds_json_schema_cannot_state_are_enforced_and_described(
    cls: type[Body], spec: Spec
) -> None:
    schema = json_schema(cls)["properties"][spec.json]
    for value, described in validator_only(spec.kind):
        assert not field_accepts(cls, spec, value), value
        assert described in schema.get("description", ""), (described, schema)


@pytest.mark.parametrize("cls", list(BODIES.values()), ids=list(BODIES))
def test_whole_bodies_agree_on_required_null_unknown_and_aliases(cls: type[Body]) -> None:
    schema = schema_of(cls)
    valid = VALID[cls]
    cases: list[tuple[dict[str, Any], bool]] = [(valid, True), ({**valid, "venue": "x"}, False)]
    for spec in specs(cls):
        without = {k: v for k, v in valid.items() if k != spec.json}
        cases.append((without, not spec.required))
        cases.append(({**valid, spec.json: None}, not spec.required))
        if spec.alias is not None:
            cases.append(({**without, spec.alias: valid[spec.json]}, True))
            cases.append(({**valid, spec.alias: valid[spec.json]}, False))
    for body, allowed in cases:
        assert (not errors_of(cls, body)) is schema.is_valid(body) is allowed, body


def test_every_problem_is_listed_and_the_alias_reads_as_type() -> None:
    body = {
        "minute": 201,
        "eventType": " ",
        "message": " ",
        "actor": "x" * 201,
        "metadata": [1],
        "team": ["visitors"],
        "period": 6,
        "sequence": -1,
        "tags": ["ok", ""],
        "retracts": 0,
        "venue": "Wembley",
    }
    assert [e["field"] for e in errors_of(NewEventBody, body)] == [
        "venue",
        "minute",
        "type",
        "message",
        "actor",
        "metadata",
        "team",
        "period",
        "sequence",
        "tags",
        "retracts",
    ]
    parsed = parse(NewEventBody, {"minute": 3, "eventType": "goal", "message": " Goal "})
    assert (parsed.event_type, parsed.message, parsed.team) == ("goal", "Goal", None)
    # the original API's free-text kinds, period numbers and team names parse as sent
    parsed = parse(
        NewEventBody,
        {"minute": 3, "eventType": "Corner", "message": "x", "team": "Arsenal", "period": "2"},
    )
    assert (parsed.event_type, parsed.team, parsed.period) == ("Corner", "Arsenal", "2H")
    assert errors_of(NewEventBody, {"minute": 3, "message": "no kind at all"}) == []


def test_cross_field_rules_are_enforced_and_described() -> None:
    start = "2030-01-01T12:00:00Z"
    body = {"sport": "football", "homeTeam": "Ghost A", "awayTeam": " ghost a ", "startTime": start}
    errors = errors_of(NewMatchBody, {**body, "endTime": start})
    assert errors == [
        {"field": "endTime", "message": "must be after startTime"},
        {"field": "awayTeam", "message": "must be a different team from homeTeam"},
    ]
    props = json_schema(NewMatchBody)["properties"]
    assert "after startTime" in props["endTime"]["description"]
    assert "not homeTeam" in props["awayTeam"]["description"]


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)  # what the body parser (orjson) hands over
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    _containers,
    max_leaves=6,
)
EDGES = st.sampled_from([0, 1, 60, 61, 200, 201, 2**63 - 1, 2**63, -1, -(2**63)])
TRICKY_TEXT = st.text(alphabet=WHITESPACE + "\x00\ufeffaZ-_0", max_size=6)
VALUES = JSON | EDGES | TRICKY_TEXT | st.sampled_from(["home", "away", "goal", "football"])
EXACT = (Text, Integer, Choice, NameOrId, SideOrId, PeriodRef, TextList)


@pytest.mark.parametrize(("cls", "spec"), FIELDS, ids=FIELD_IDS)
def test_the_validator_is_never_looser_than_the_schema(cls: type[Body], spec: Spec) -> None:
    """What schemathesis checks end to end, here for any JSON value: whatever the
    validator accepts, the schema accepts; for the kinds JSON Schema can state
    whole, the converse too (but 1.0, an integer to JSON Schema)."""
    schema = field_schema(cls, spec)
    exact = isinstance(spec.kind, EXACT)

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(value=VALUES)
    def check(value: Any) -> None:
        accepted = field_accepts(cls, spec, value)
        if isinstance(spec.kind, Timestamp) and accepted:
            # ISO 8601 beyond RFC 3339 (a space for T, basic format) is accepted, and
            # the description says so; every such string parses with its offset
            assert "ISO 8601" in json_schema(cls)["properties"][spec.json]["description"]
            return
        if accepted:
            assert schema.is_valid(value), value
        elif exact and not (isinstance(value, float) and value.is_integer()):
            assert not schema.is_valid(value), value

    check()
