"""Shared helpers for the adapter tests: recorded payloads in, RawResponse out.

Payloads live in ``tests/fixtures/providers/<kind>/`` (see SOURCES.md there).
None of these fixtures needs a database or the network.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest

from providers.base import FeedConfig, Purpose, RawResponse
from providers.registry import ADAPTERS

PAYLOADS = Path(__file__).resolve().parent.parent / "fixtures" / "providers"

#: When each recorded sample was (about to be) fetched; used for update-stamp sanity.
FETCHED_AT: dict[str, datetime] = {
    "football-data": datetime(2022, 9, 4, 9, 30, 13, tzinfo=UTC),  # its HTTP Date header
    "api-football": datetime(2024, 10, 23, 21, 50, tzinfo=UTC),
    "espn": datetime(2026, 6, 13, 4, 0, tzinfo=UTC),
    "thesportsdb": datetime(2026, 10, 5, 19, 31, tzinfo=UTC),
}


def load_payload(kind: str, name: str) -> Any:
    """The decoded JSON body of a stored payload (a recorded envelope is unwrapped)."""
    data = json.loads((PAYLOADS / kind / name).read_text(encoding="utf-8"))
    if isinstance(data, dict) and isinstance(data.get("body"), str) and "headers" in data:
        return json.loads(data["body"])
    return data


def response_for(
    kind: str,
    payload: Any,
    *,
    purpose: Purpose = "today",
    fetched_at: datetime | None = None,
    headers: dict[str, str] | None = None,
    provider_match_id: str | None = None,
) -> RawResponse:
    return RawResponse(
        feed=kind,
        kind=kind,
        purpose=purpose,
        method="GET",
        url=f"https://{kind}.test/",
        params={},
        status=200,
        headers=headers or {},
        body=json.dumps(payload, ensure_ascii=False),  # stdlib: big ints allowed
        fetched_at=fetched_at or FETCHED_AT[kind],
        provider_match_id=provider_match_id,
    )


def recorded_response(kind: str, name: str) -> RawResponse:
    """A stored payload as a RawResponse; a recorded envelope keeps its headers and Date."""
    data = json.loads((PAYLOADS / kind / name).read_text(encoding="utf-8"))
    if not (isinstance(data, dict) and isinstance(data.get("body"), str)):
        return response_for(kind, data)
    headers = {key: values[0] for key, values in data["headers"].items()}
    return RawResponse(
        feed=kind,
        kind=kind,
        purpose="today",
        method="GET",
        url=f"https://{kind}.test/",
        params={},
        status=data["status"],
        headers=headers,
        body=data["body"],
        fetched_at=parsedate_to_datetime(headers["date"]),
    )


Parse = Callable[..., list[Any]]


@pytest.fixture(scope="session")
def payload() -> Callable[[str, str], Any]:
    """``payload(kind, file)``: a fresh deep copy of a stored JSON body."""
    cache: dict[tuple[str, str], Any] = {}

    def get(kind: str, name: str) -> Any:
        if (kind, name) not in cache:
            cache[(kind, name)] = load_payload(kind, name)
        return copy.deepcopy(cache[(kind, name)])

    return get


@pytest.fixture(scope="session")
def parse() -> Parse:
    """``parse(kind, payload, purpose="today", competitions=(), **response_kw)``."""

    def run(
        kind: str,
        body: Any,
        purpose: Purpose = "today",
        competitions: tuple[str, ...] = (),
        **kwargs: Any,
    ) -> list[Any]:
        adapter = ADAPTERS[kind](FeedConfig(name=kind, kind=kind, competitions=competitions))
        return adapter.parse(response_for(kind, body, purpose=purpose, **kwargs))

    return run
