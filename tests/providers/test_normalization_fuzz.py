"""Property: a mutated provider payload normalizes or raises PayloadError, nothing else.

Hypothesis takes each stored payload of a provider, applies a few mutations
(delete a key or item, swap a value for null / a string / a huge int / nested
junk, truncate a list) and runs ``Adapter.parse_report`` on it: the response
is refused with a PayloadError, or its good matches come back with the
malformed ones set aside as PayloadErrors. Errors the catch-all made out of a
stray ``KeyError`` or ``TypeError`` fail the test instead of being papered
over: every field an adapter reads, it checks itself.
"""

from __future__ import annotations

import copy
import json
import os
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livescore.model import MatchObservation, MatchStatus
from providers.base import FeedConfig, Purpose
from providers.errors import PayloadError
from providers.registry import ADAPTERS
from tests.providers.conftest import PAYLOADS, load_payload, response_for

EXAMPLES = int(os.environ.get("LIVESCORE_FUZZ_EXAMPLES", "200"))

JUNK: list[Any] = [
    None,
    "",
    "x",
    "90+6",
    "45'+5'",
    "2026-13-45T99:00:00Z",
    "2026-10-05 20:30:31",
    "0",
    "-3",
    "1e3",
    -1,
    0,
    7,
    10**30,
    -(2**63),
    1.5,
    float(2**70),
    True,
    False,
    [],
    {},
    [None, "x", {"id": 1}],
    {"id": None, "home": "x", "away": [], "value": {"deep": [1, 2]}},
    {"name": "STATUS_FULL_TIME", "state": "post"},
    "\u0000\u202e",
]

Path = tuple[str | int, ...]


def all_paths(value: Any, prefix: Path = ()) -> list[Path]:
    found: list[Path] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found.append((*prefix, key))
            found.extend(all_paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.append((*prefix, index))
            found.extend(all_paths(item, (*prefix, index)))
    return found


def parent_of(root: Any, path: Path) -> Any:
    node = root
    for step in path[:-1]:
        node = node[step]
    return node


@st.composite
def mutated(draw: st.DrawFn, bodies: list[Any]) -> Any:
    body = copy.deepcopy(draw(st.sampled_from(bodies)))
    for _ in range(draw(st.integers(1, 4))):
        paths = all_paths(body)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, last = parent_of(body, path), path[-1]
        operation = draw(st.sampled_from(["delete", "replace", "replace", "truncate", "stringify"]))
        if operation == "delete":
            del parent[last]
        elif operation == "truncate" and isinstance(parent[last], list | str):
            parent[last] = parent[last][: draw(st.integers(0, 2))]
        elif operation == "stringify" and not isinstance(parent[last], dict | list):
            parent[last] = str(parent[last]) if not isinstance(parent[last], str) else 12
        else:
            parent[last] = copy.deepcopy(draw(st.sampled_from(JUNK)))
    return body


def bodies_of(kind: str) -> list[Any]:
    return [load_payload(kind, p.name) for p in sorted((PAYLOADS / kind).glob("*.json"))]


def check(observations: list[MatchObservation], kind: str) -> None:
    assert isinstance(observations, list)
    for obs in observations:
        assert isinstance(obs, MatchObservation)
        assert obs.provider == kind
        assert obs.start_time.utcoffset() == timedelta(0)
        assert isinstance(obs.status, MatchStatus)
        for score in (obs.home_score, obs.away_score):
            assert score is None or 0 <= score <= 999
        if obs.provider_updated_at is not None:
            assert obs.provider_updated_at.utcoffset() == timedelta(0)
        keys = [event.key for event in obs.events]
        assert len(keys) == len(set(keys))


def _bug_shaped(exc: PayloadError) -> bool:
    """A PayloadError made by the catch-all from a stray KeyError/TypeError...:
    the adapter did not check that field itself."""
    return exc.problem.split(":", 1)[0] in {
        "KeyError", "TypeError", "ValueError", "AttributeError", "IndexError",
    }  # fmt: skip


@pytest.mark.parametrize("kind", sorted(ADAPTERS.keys() - {"fixture"}))
def test_mutated_payloads_normalize_or_raise_payload_error(kind: str) -> None:
    adapter = ADAPTERS[kind](FeedConfig(name=kind, kind=kind))

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(body=mutated(bodies_of(kind)), purpose=st.sampled_from(["today", "live", "match"]))
    def run(body: Any, purpose: Purpose) -> None:
        response = response_for(kind, body, purpose=purpose)
        try:
            report = adapter.parse_report(response)
        except PayloadError as exc:
            assert exc.provider == kind
            assert exc.path
            assert not _bug_shaped(exc), exc
            with pytest.raises(PayloadError):
                adapter.parse(response)
            return
        for error in report.errors:
            assert error.provider == kind and error.path
            assert not _bug_shaped(error), error
        check(report.observations, kind)
        # the strict public path agrees: it raises iff a match was set aside
        if report.errors:
            with pytest.raises(PayloadError):
                adapter.parse(response)
        else:
            assert adapter.parse(response) == report.observations

    run()


def test_every_stored_payload_is_valid_json() -> None:
    for path in PAYLOADS.glob("*/*.json"):
        json.loads(path.read_text(encoding="utf-8"))
