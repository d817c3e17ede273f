"""The recording format: round trip, time order, validation with line numbers."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from providers.base import RawResponse
from providers.recording import (
    MANIFEST_FILE,
    RESPONSES_FILE,
    RecordedFeed,
    RecordingError,
    RecordingWriter,
    encode_response,
    iter_responses,
    load_recording,
    read_manifest,
)

T0 = datetime(2022, 9, 4, 13, 0, tzinfo=UTC)


def raw(
    minute: int, *, feed: str = "fd", body: str = '{"matches":[]}', **kw: object
) -> RawResponse:
    values: dict[str, object] = {
        "feed": feed,
        "kind": "football-data",
        "purpose": "today",
        "method": "GET",
        "url": "https://api.football-data.org/v4/matches",
        "params": {"date": "2022-09-04"},
        "status": 200,
        "headers": {
            "content-type": "application/json;charset=UTF-8",
            "x-requests-available-minute": "9",
        },
        "body": body,
        "fetched_at": T0 + timedelta(minutes=minute),
    }
    values.update(kw)
    return RawResponse(**values)  # type: ignore[arg-type]


def test_round_trip(tmp_path: Path) -> None:
    responses = [
        raw(0),
        raw(1, body='{"name":"Atlético — Mönchengladbach","emoji":"⚽"}'),
        raw(
            2,
            feed="af",
            kind="api-football",
            purpose="match",
            params={"id": "868015"},
            provider_match_id="868015",
            extra={"note": "after full time"},
            fetched_at=T0 + timedelta(minutes=2, microseconds=123456),
        ),
    ]
    with RecordingWriter(
        tmp_path / "rec",
        description="a test",
        feeds=(RecordedFeed("fd", "football-data", 1, ("PL",)),),
        expect={"matches": []},
    ) as writer:
        for response in responses:
            writer.write(response)

    recording = load_recording(tmp_path / "rec")
    assert list(recording.responses) == responses
    manifest = recording.manifest
    assert manifest.name == "rec"
    assert manifest.description == "a test"
    assert manifest.format == 1
    assert manifest.feeds == (
        RecordedFeed("fd", "football-data", 1, ("PL",)),
        RecordedFeed("af", "api-football", 100, ()),  # added when its first response came
    )
    assert manifest.recorded_from == T0
    assert manifest.recorded_to == T0 + timedelta(minutes=2, microseconds=123456)
    assert manifest.expect == {"matches": []}


def test_the_file_format_is_as_documented(tmp_path: Path) -> None:
    with RecordingWriter(tmp_path / "rec") as writer:
        writer.write(raw(5, body='{"a": "é"}'))
    line = (tmp_path / "rec" / RESPONSES_FILE).read_text(encoding="utf-8")
    assert line.endswith("\n") and line.count("\n") == 1
    data = json.loads(line)
    assert list(data) == [
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
    ]
    assert data["fetched_at"] == "2022-09-04T13:05:00Z"
    assert data["body"] == '{"a": "é"}'
    assert "é" in line and "\\u00e9" not in line  # UTF-8, not \\u escapes
    manifest = json.loads((tmp_path / "rec" / MANIFEST_FILE).read_text())
    assert manifest["recorded_from"] == manifest["recorded_to"] == "2022-09-04T13:05:00Z"
    assert manifest["feeds"] == [{"name": "fd", "kind": "football-data", "priority": 100}]


def test_rewriting_a_recording_is_byte_identical(tmp_path: Path) -> None:
    with RecordingWriter(tmp_path / "a") as writer:
        for minute in range(3):
            writer.write(raw(minute, body=f'{{"minute":{minute},"team":"Bayern München"}}'))
    with RecordingWriter(tmp_path / "b") as writer:
        for response in iter_responses(tmp_path / "a"):
            writer.write(response)
    for name in (RESPONSES_FILE,):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_each_line_is_flushed_as_written(tmp_path: Path) -> None:
    writer = RecordingWriter(tmp_path / "rec")
    try:
        writer.write(raw(0))
        assert (tmp_path / "rec" / RESPONSES_FILE).read_text().count("\n") == 1
    finally:
        writer.close()


def test_reopening_appends(tmp_path: Path) -> None:
    with RecordingWriter(tmp_path / "rec", description="first") as writer:
        writer.write(raw(0))
    with RecordingWriter(tmp_path / "rec") as writer:
        writer.write(raw(10, feed="af", kind="api-football"))
    recording = load_recording(tmp_path / "rec")
    assert [r.feed for r in recording.responses] == ["fd", "af"]
    assert recording.manifest.description == "first"
    assert recording.manifest.recorded_to == T0 + timedelta(minutes=10)


def test_wire_headers_are_not_recorded(tmp_path: Path) -> None:
    with RecordingWriter(tmp_path / "rec") as writer:
        writer.write(
            raw(0, headers={"content-encoding": "gzip", "content-length": "10", "date": "x"})
        )
    (response,) = iter_responses(tmp_path / "rec")
    assert response.headers == {"date": "x"}


def test_responses_come_back_in_time_order(tmp_path: Path) -> None:
    lines = [raw(3, body="c"), raw(1, body="a"), raw(3, body="d"), raw(2, body="b")]
    directory = tmp_path / "rec"
    directory.mkdir()
    (directory / RESPONSES_FILE).write_text(
        "".join(encode_response(r) + "\n" for r in lines), encoding="utf-8"
    )
    assert [r.body for r in iter_responses(directory)] == ["a", "b", "c", "d"]  # ties: file order


def _line(**changes: object) -> str:
    data = json.loads(encode_response(raw(0)))
    for key, value in changes.items():
        if value is _DROP:
            data.pop(key)
        else:
            data[key] = value
    return json.dumps(data)


_DROP = object()


@pytest.mark.parametrize(
    ("bad_line", "problem"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "expected a JSON object"),
        (_line(body=_DROP), "missing key(s) body"),
        (_line(purpose="yesterday"), "purpose 'yesterday'"),
        (_line(status="200"), "status '200'"),
        (_line(fetched_at="2022-09-04T13:00:00"), "no UTC offset"),
        (_line(fetched_at="last tuesday"), "not ISO 8601"),
        (_line(headers={"x": 1}), "headers must be an object of strings"),
        (_line(bdy="typo"), "unknown key(s) bdy"),
        (_line(feed=""), "feed must be a non-empty string"),
        (_line(provider_match_id=416329), "provider_match_id must be a string"),
    ],
)
def test_a_malformed_line_is_named(tmp_path: Path, bad_line: str, problem: str) -> None:
    directory = tmp_path / "rec"
    directory.mkdir()
    good = encode_response(raw(0))
    (directory / RESPONSES_FILE).write_text(f"{good}\n\n{bad_line}\n{good}\n", encoding="utf-8")
    with pytest.raises(RecordingError) as info:
        list(iter_responses(directory))
    assert info.value.line == 3
    assert f"{RESPONSES_FILE} line 3" in str(info.value)
    assert problem in str(info.value)


def test_missing_files_are_explained(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match=r"no manifest\.json"):
        read_manifest(tmp_path)
    with pytest.raises(RecordingError, match=r"no responses\.jsonl"):
        list(iter_responses(tmp_path))


def test_manifest_is_validated(tmp_path: Path) -> None:
    (tmp_path / MANIFEST_FILE).write_text(json.dumps({"name": "x", "format": 2}))
    with pytest.raises(RecordingError, match="format 2 is not supported"):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST_FILE).write_text(json.dumps({"name": "x", "format": 1, "feeds": [{}]}))
    with pytest.raises(RecordingError, match=r"feeds\[0\] needs a string name"):
        read_manifest(tmp_path)


def test_every_response_feed_must_be_in_the_manifest(tmp_path: Path) -> None:
    with RecordingWriter(tmp_path / "rec") as writer:
        writer.write(raw(0))
    manifest = json.loads((tmp_path / "rec" / MANIFEST_FILE).read_text())
    manifest["feeds"] = []
    (tmp_path / "rec" / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(RecordingError, match="feed 'fd' which the manifest does not list"):
        load_recording(tmp_path / "rec")


def test_naive_times_are_refused_when_writing(tmp_path: Path) -> None:
    with RecordingWriter(tmp_path / "rec") as writer, pytest.raises(ValueError, match="naive"):
        writer.write(replace(raw(0), fetched_at=datetime(2022, 9, 4, 13, 0)))
