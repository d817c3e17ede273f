"""Recordings: provider responses saved exactly as received, replayable later.

Format (version 1)
==================

A recording is a directory, conventionally ``fixtures/NAME/``, holding two files.

``manifest.json`` — one JSON object::

    {
      "name": "premier-league-matchday",          # the directory's name
      "description": "what was recorded and why",
      "format": 1,                                  # this format's version
      "feeds": [                                    # every feed with responses here
        {"name": "fd", "kind": "football-data", "priority": 1, "competitions": ["PL"]}
      ],
      "recorded_from": "2022-09-04T11:00:00Z",      # first fetched_at (UTC), or null
      "recorded_to": "2022-09-04T18:30:00Z",        # last fetched_at (UTC), or null
      "expect": {...}                               # optional, see below
    }

``feeds[].competitions`` is optional; ``priority`` defaults to 100 (lower is
trusted first, as in ``FeedConfig``).

``responses.jsonl`` — one response per line (UTF-8 JSON, no blank lines
needed), in the order they were fetched. Each line is an object with these
keys, in this order::

    feed               str   the configured feed's name (one of manifest feeds)
    kind               str   its kind: football-data, api-football, espn, thesportsdb
    purpose            str   "today", "live" or "match"
    method             str   "GET"
    url                str   the request URL without query string and without secrets
    params             obj   the request's query parameters (str -> str), never auth ones
    status             int   the HTTP status
    headers            obj   response headers (lower-case names -> str), minus
                             credential, cookie and transfer-encoding headers
    body               str   the response body as text, exactly as received
                             (a secret echoed in it is masked as ***)
    fetched_at         str   ISO 8601 UTC with a "Z", e.g. "2022-09-04T13:05:00Z"
    provider_match_id  str   only for purpose "match": the provider's id asked for
    extra              obj   optional, free-form annotations

Writers emit each line as ``json.dumps(obj, ensure_ascii=False,
separators=(",", ":"))`` and the manifest with ``indent=2`` plus a final
newline, so a recording written twice from the same responses is
byte-identical (``fixtures/make_fixtures.py`` relies on it).

Readers validate every line and name the file and line number of the first
malformed one. Responses are yielded in ``fetched_at`` order (stable for equal
times, so the file order breaks ties).

``expect`` (optional) states what a replay must end with, for tests::

    {"matches": [{"key": "mun-ars", "home": "Manchester United", "away": "Arsenal",
                  "kickoff": "2022-09-04T15:30:00Z",
                  "status": "finished", "homeScore": 3, "awayScore": 1,
                  "halfTime": {"home": 1, "away": 0},     # or null
                  "penalties": null,                      # or {"home": 4, "away": 1}
                  "providers": {"football-data": "416329", "api-football": "868015"}}]}

``status`` uses the contract's match statuses; ``homeScore``/``awayScore`` are
the match score (extra time included, shoot-out excluded), null when the
providers give none (a postponed match); ``providers`` maps a feed name to
that feed's own id for the match. These are what the last responses state.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self, cast, get_args

from providers.base import FeedConfig, Purpose, RawResponse
from providers.errors import ProviderError

FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
RESPONSES_FILE = "responses.jsonl"

_PURPOSES: frozenset[str] = frozenset(get_args(Purpose))
_REQUIRED: tuple[str, ...] = (
    "feed",
    "kind",
    "purpose",
    "method",
    "url",
    "params",
    "status",
    "headers",
    "body",
    "fetched_at",
)
_OPTIONAL: tuple[str, ...] = ("provider_match_id", "extra")


class RecordingError(ProviderError):
    """A recording is missing or malformed. Names the file (and line) at fault."""

    def __init__(self, path: Path | str, problem: str, line: int | None = None) -> None:
        where = f"{path} line {line}" if line is not None else str(path)
        super().__init__("recording", f"{where}: {problem}")
        self.path = Path(path)
        self.line = line
        self.problem = problem


# -- the manifest -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordedFeed:
    """One feed whose responses a recording holds."""

    name: str
    kind: str
    priority: int = 100
    competitions: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "priority": self.priority}
        if self.competitions:
            out["competitions"] = list(self.competitions)
        return out

    def to_config(self, **overrides: Any) -> FeedConfig:
        """A ``FeedConfig`` for parsing this feed's responses with its kind's adapter."""
        values: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "priority": self.priority,
            "competitions": self.competitions,
        }
        values.update(overrides)
        return FeedConfig(**values)


@dataclass(frozen=True, slots=True)
class Manifest:
    name: str
    description: str = ""
    feeds: tuple[RecordedFeed, ...] = ()
    recorded_from: datetime | None = None
    recorded_to: datetime | None = None
    expect: dict[str, Any] = field(default_factory=dict)
    format: int = FORMAT_VERSION

    def feed(self, name: str) -> RecordedFeed | None:
        return next((f for f in self.feeds if f.name == name), None)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "format": self.format,
            "feeds": [f.to_json() for f in self.feeds],
            "recorded_from": format_time(self.recorded_from) if self.recorded_from else None,
            "recorded_to": format_time(self.recorded_to) if self.recorded_to else None,
        }
        if self.expect:
            out["expect"] = self.expect
        return out


def format_time(when: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``; microseconds only when there are some."""
    if when.tzinfo is None:
        raise ValueError(f"naive datetime {when!r}: recordings need timezone-aware UTC times")
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_time(value: object, what: str) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be an ISO 8601 string, got {type(value).__name__}")
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{what} {value!r} is not ISO 8601") from exc
    if when.tzinfo is None:
        raise ValueError(f"{what} {value!r} has no UTC offset; write it with a trailing Z")
    return when.astimezone(UTC)


def encode_manifest(manifest: Manifest) -> str:
    return json.dumps(manifest.to_json(), ensure_ascii=False, indent=2) + "\n"


def read_manifest(directory: Path | str) -> Manifest:
    """Read and validate ``directory/manifest.json``."""
    path = Path(directory) / MANIFEST_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RecordingError(path, "no manifest.json: is this a recording directory?") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordingError(path, f"unreadable manifest ({exc})") from exc
    try:
        return _manifest_from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise RecordingError(path, f"invalid manifest: {exc}") from exc


def _manifest_from_json(data: Any) -> Manifest:
    if not isinstance(data, dict):
        raise TypeError("the manifest must be a JSON object")
    version = data.get("format")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"format {version!r} is not supported (this reader knows {FORMAT_VERSION})"
        )
    feeds = []
    for i, raw in enumerate(data.get("feeds") or []):
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise ValueError(f"feeds[{i}] needs a string name")
        if not isinstance(raw.get("kind"), str):
            raise ValueError(f"feeds[{i}] needs a string kind")
        priority = raw.get("priority", 100)
        if not isinstance(priority, int) or isinstance(priority, bool):
            raise ValueError(f"feeds[{i}].priority must be an integer")
        competitions = raw.get("competitions") or []
        if not isinstance(competitions, list) or not all(isinstance(c, str) for c in competitions):
            raise ValueError(f"feeds[{i}].competitions must be a list of strings")
        feeds.append(RecordedFeed(raw["name"], raw["kind"], priority, tuple(competitions)))
    expect = data.get("expect") or {}
    if not isinstance(expect, dict):
        raise ValueError("expect must be an object")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("name must be a non-empty string")
    return Manifest(
        name=name,
        description=str(data.get("description") or ""),
        feeds=tuple(feeds),
        recorded_from=(
            _parse_time(data["recorded_from"], "recorded_from")
            if data.get("recorded_from")
            else None
        ),
        recorded_to=(
            _parse_time(data["recorded_to"], "recorded_to") if data.get("recorded_to") else None
        ),
        expect=expect,
    )


# -- one response line --------------------------------------------------------------------


def response_to_json(response: RawResponse) -> dict[str, Any]:
    """The line object for ``response`` (keys in the documented order)."""
    out: dict[str, Any] = {
        "feed": response.feed,
        "kind": response.kind,
        "purpose": response.purpose,
        "method": response.method,
        "url": response.url,
        "params": dict(response.params),
        "status": response.status,
        "headers": dict(response.headers),
        "body": response.body,
        "fetched_at": format_time(response.fetched_at),
    }
    if response.provider_match_id is not None:
        out["provider_match_id"] = response.provider_match_id
    if response.extra:
        out["extra"] = dict(response.extra)
    return out


def encode_response(response: RawResponse) -> str:
    """One line of ``responses.jsonl`` (without the newline)."""
    return json.dumps(response_to_json(response), ensure_ascii=False, separators=(",", ":"))


def _str_map(value: object, what: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError(f"{what} must be an object of strings")
    return cast(dict[str, str], value)


def response_from_json(data: object) -> RawResponse:
    """Validate one decoded line. Raises ``ValueError`` saying what is wrong."""
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ValueError(f"missing key(s) {', '.join(missing)}")
    unknown = sorted(set(data) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)}")
    for key in ("feed", "kind", "method", "url"):
        if not isinstance(data[key], str) or not data[key]:
            raise ValueError(f"{key} must be a non-empty string")
    if data["purpose"] not in _PURPOSES:
        raise ValueError(f"purpose {data['purpose']!r} is not one of {sorted(_PURPOSES)}")
    status = data["status"]
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise ValueError(f"status {status!r} is not an HTTP status")
    if not isinstance(data["body"], str):
        raise ValueError("body must be a string (the response text as received)")
    match_id = data.get("provider_match_id")
    if match_id is not None and not isinstance(match_id, str):
        raise ValueError("provider_match_id must be a string")
    extra = data.get("extra") or {}
    if not isinstance(extra, dict):
        raise ValueError("extra must be an object")
    return RawResponse(
        feed=data["feed"],
        kind=data["kind"],
        purpose=cast(Purpose, data["purpose"]),
        method=data["method"],
        url=data["url"],
        params=_str_map(data["params"], "params"),
        status=status,
        headers=_str_map(data["headers"], "headers"),
        body=data["body"],
        fetched_at=_parse_time(data["fetched_at"], "fetched_at"),
        provider_match_id=match_id,
        extra=extra,
    )


def iter_responses(directory: Path | str) -> Iterator[RawResponse]:
    """Every response of a recording, validated, in ``fetched_at`` order."""
    path = Path(directory) / RESPONSES_FILE
    try:
        handle = path.open(encoding="utf-8")
    except FileNotFoundError as exc:
        raise RecordingError(path, "no responses.jsonl: is this a recording directory?") from exc
    responses: list[RawResponse] = []
    with handle:
        try:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    responses.append(response_from_json(json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise RecordingError(path, f"not JSON ({exc.msg})", number) from exc
                except ValueError as exc:
                    raise RecordingError(path, str(exc), number) from exc
        except UnicodeDecodeError as exc:
            raise RecordingError(path, f"not UTF-8 ({exc})") from exc
    responses.sort(key=lambda r: r.fetched_at)  # stable: file order breaks ties
    yield from responses


@dataclass(frozen=True, slots=True)
class Recording:
    """A recording read whole: its manifest and its responses in time order."""

    directory: Path
    manifest: Manifest
    responses: tuple[RawResponse, ...]


def load_recording(directory: Path | str) -> Recording:
    """Read and validate a recording; every response's feed must be in the manifest."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    responses = tuple(iter_responses(directory))
    known = {f.name for f in manifest.feeds}
    for response in responses:
        if response.feed not in known:
            raise RecordingError(
                directory / MANIFEST_FILE,
                f"responses name feed {response.feed!r} which the manifest does not list",
            )
    return Recording(directory=directory, manifest=manifest, responses=responses)


# -- writing ------------------------------------------------------------------------------

#: Response headers that describe the wire encoding, not the recorded text body.
_WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding", "connection"})


class RecordingWriter:
    """Appends responses to a recording, one flushed line each.

    Opening an existing recording appends to it (its manifest is kept, feeds
    are added as new ones appear). ``close()`` rewrites the manifest with the
    recorded time range. Use as a context manager.
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        name: str | None = None,
        description: str = "",
        feeds: tuple[RecordedFeed, ...] = (),
        expect: Mapping[str, Any] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        if (self.directory / MANIFEST_FILE).exists():
            manifest = read_manifest(self.directory)
        else:
            manifest = Manifest(name=name or self.directory.name, description=description)
        for feed in feeds:
            if manifest.feed(feed.name) is None:
                manifest = _with_feed(manifest, feed)
        if expect is not None:
            manifest = _replace_manifest(manifest, expect=dict(expect))
        self.manifest = manifest
        self._write_manifest()
        self._file: IO[str] | None = (self.directory / RESPONSES_FILE).open(
            "a", encoding="utf-8", newline="\n"
        )

    def write(self, response: RawResponse) -> None:
        if self._file is None:
            raise RecordingError(self.directory, "the writer is closed")
        headers = {k: v for k, v in response.headers.items() if k.lower() not in _WIRE_HEADERS}
        if headers != response.headers:
            response = replace(response, headers=headers)
        self._file.write(encode_response(response) + "\n")
        self._file.flush()
        manifest = self.manifest
        if manifest.feed(response.feed) is None:
            manifest = _with_feed(manifest, RecordedFeed(response.feed, response.kind))
        when = response.fetched_at
        start = manifest.recorded_from
        end = manifest.recorded_to
        manifest = _replace_manifest(
            manifest,
            recorded_from=when if start is None or when < start else start,
            recorded_to=when if end is None or when > end else end,
        )
        self.manifest = manifest

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            self._write_manifest()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _write_manifest(self) -> None:
        path = self.directory / MANIFEST_FILE
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(encode_manifest(self.manifest), encoding="utf-8", newline="\n")
        os.replace(tmp, path)


def _with_feed(manifest: Manifest, feed: RecordedFeed) -> Manifest:
    return _replace_manifest(manifest, feeds=(*manifest.feeds, feed))


def _replace_manifest(manifest: Manifest, **changes: Any) -> Manifest:
    return replace(manifest, **changes)
