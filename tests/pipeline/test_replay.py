"""Replay of the shipped recordings through the real pipeline (adapters -> ingest ->
store -> relay), at speed 0: final states, determinism across fresh databases,
idempotence over itself."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from livescore.config import Settings
from livescore.names import name_key
from pipeline.context import PipelineContext
from pipeline.replay import ReplayProgress, replay
from providers.fixture import FixtureFeed
from providers.recording import RecordingWriter
from store import crosswalk
from store.changes import changes_since
from store.db import Conn, Pool
from store.events import list_events
from store.matches import get_match
from tests.conftest import Services
from tests.pipeline.builders import assert_seqs_gap_free, match_ids
from tests.pipeline.conftest import FIXTURES, FreshDb, endpoints_for, make_settings

NAMES = sorted(p.name for p in FIXTURES.iterdir() if (p / "manifest.json").is_file())


def expectations(name: str) -> list[dict[str, Any]]:
    manifest = json.loads((FIXTURES / name / "manifest.json").read_text())
    matches: list[dict[str, Any]] = manifest["expect"]["matches"]
    return matches


async def snapshot(pool: Pool) -> dict[int, dict[str, Any]]:
    """Every match as bytes: its JSON, its change log and its commentary."""
    out: dict[int, dict[str, Any]] = {}
    async with pool.connection() as conn:
        for match_id in await match_ids(conn):
            out[match_id] = {
                "match": orjson.dumps(await get_match(conn, match_id)),
                "changes": [
                    (c.seq, c.type, orjson.dumps(c.payload), c.source, c.created_at)
                    for c in await changes_since(conn, match_id, 0, limit=100_000)
                ],
                "events": orjson.dumps(await list_events(conn, match_id, limit=10_000)),
            }
    return out


async def replay_into(
    services: Services, database_url: str, name: str
) -> tuple[ReplayProgress, dict[int, dict[str, Any]]]:
    """Replay ``name`` into another database, with a Redis prefix of its own."""
    settings = make_settings(services, services.next_prefix(), DATABASE_URL=database_url)
    ctx = await PipelineContext.open(
        settings, endpoints_for(database_url, services.redis_url), pool_size=5
    )
    try:
        progress = await replay(ctx, FIXTURES / name, speed=0)
        return progress, await snapshot(ctx.pool)
    finally:
        await ctx.close()


async def canonical_match(conn: Conn, name: str, expected: dict[str, Any]) -> int:
    """The one canonical match every feed's id of ``expected`` maps to."""
    kinds = {
        feed: config.kind for feed, config in FixtureFeed(FIXTURES / name).feed_configs().items()
    }
    found = {
        await crosswalk.lookup(conn, "match", kinds[feed], provider_id)
        for feed, provider_id in expected["providers"].items()
    }
    assert len(found) == 1 and None not in found, (expected["key"], found)
    (match_id,) = found
    assert match_id is not None
    return match_id


async def aliases_of(conn: Conn, team_id: int) -> set[str]:
    cur = await conn.execute("SELECT alias_key FROM team_aliases WHERE team_id = %s", (team_id,))
    return {row["alias_key"] for row in await cur.fetchall()}


@pytest.mark.parametrize("name", NAMES)
async def test_a_replay_ends_with_the_final_state_its_manifest_expects(
    name: str, pctx: PipelineContext, conn: Conn
) -> None:
    progress = await replay(pctx, FIXTURES / name, speed=0)
    assert progress.responses == progress.total > 0
    assert progress.malformed == 0
    expected_matches = expectations(name)
    assert len(progress.report.touched_matches) == len(expected_matches)
    for expected in expected_matches:
        match_id = await canonical_match(conn, name, expected)
        match = await get_match(conn, match_id)
        key = expected["key"]
        assert match["status"] == expected["status"], key
        assert (match["homeScore"], match["awayScore"]) == (
            expected["homeScore"] or 0,
            expected["awayScore"] or 0,
        ), key
        assert match["breakdown"]["halfTime"] == expected["halfTime"], key
        assert match["breakdown"]["penalties"] == expected["penalties"], key
        assert match["startTime"] == expected["kickoff"].replace("Z", "+00:00"), key
        assert match["override"] is None and match["stale"] is False, key
        assert name_key(expected["home"]) in await aliases_of(conn, match["homeTeam"]["id"]), key
        assert name_key(expected["away"]) in await aliases_of(conn, match["awayTeam"]["id"]), key
    await assert_seqs_gap_free(conn)


@pytest.mark.parametrize("name", NAMES)
async def test_replaying_into_a_fresh_database_gives_byte_identical_states_and_change_logs(
    name: str, services: Services, pool: Pool, settings: Settings, fresh_db: FreshDb
) -> None:
    # the run's own database (emptied by ``pool``, identities restarted) ...
    first, first_state = await replay_into(services, services.database_url, name)
    # ... and a brand-new one
    second, second_state = await replay_into(services, await fresh_db(), name)
    assert first_state.keys() == second_state.keys() and first_state
    for match_id, state in first_state.items():
        other = second_state[match_id]
        assert state["match"] == other["match"], match_id
        assert state["changes"] == other["changes"], match_id
        assert state["events"] == other["events"], match_id
        assert state["changes"], match_id
    assert len(first.report.changes) == len(second.report.changes)


@pytest.mark.parametrize("name", NAMES)
async def test_replaying_a_recording_over_itself_adds_nothing(
    name: str, pctx: PipelineContext
) -> None:
    await replay(pctx, FIXTURES / name, speed=0)
    before = await snapshot(pctx.pool)
    again = await replay(pctx, FIXTURES / name, speed=0)
    assert again.report.changes == []
    assert (again.report.new_observations, again.report.matches_created) == (0, 0)
    assert again.report.observations > 0
    assert await snapshot(pctx.pool) == before


def test_every_shipped_recording_states_what_its_replay_must_end_with() -> None:
    assert NAMES == ["cup-final-shootout", "premier-league-matchday", "world-cup-day"]
    for name in NAMES:
        assert expectations(name), name
        assert Path(FIXTURES / name / "responses.jsonl").stat().st_size > 0


async def test_a_recorded_429_or_500_is_reported_as_an_error_response_not_as_malformed(
    pctx: PipelineContext, conn: Conn, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    name = "cup-final-shootout"
    copy = tmp_path / name
    shutil.copytree(FIXTURES / name, copy)
    recording = FixtureFeed(copy)
    first = recording.responses[0]
    with RecordingWriter(copy) as writer:
        writer.write(replace(first, status=429, headers={"retry-after": "60"},
                             body='{"message": "Too many requests"}'))  # fmt: skip
        writer.write(replace(first, status=500, body="<html>Internal Server Error</html>"))
    progress = await replay(pctx, copy, speed=0)
    assert progress.responses == progress.total == len(recording.responses) + 2
    assert progress.malformed == 0
    assert progress.error_responses == {429: 1, 500: 1}
    assert progress.error_summary() == (
        "2 recorded error responses: HTTP 429 (rate limited) x1, HTTP 500 (provider error) x1"
    )
    logged = [r.getMessage() for r in caplog.records if "replay.error_response" in r.getMessage()]
    assert len(logged) == 2
    assert any("recorded response was HTTP 429 (rate limited)" in line for line in logged)
    # everything else replayed as before
    (expected,) = expectations(name)
    match = await get_match(conn, await canonical_match(conn, name, expected))
    assert match["status"] == expected["status"]
