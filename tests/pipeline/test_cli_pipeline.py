"""The pipeline's CLI in subprocesses (``python -m cli``), bound to this run's
database and a Redis prefix of each test's own, talking to a scripted local
HTTP server that answers like football-data.org."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from livescore import clock
from livescore.keys import Keys
from livescore.model import MatchStatus
from providers.recording import load_recording
from store import crosswalk
from store.changes import changes_since
from store.db import Conn, Pool
from store.feeds import get_feed
from store.matches import get_match
from store.overrides import audit_trail
from tests.conftest import Services
from tests.factories import Factory
from tests.pipeline.builders import fd_list, fd_match, minutes
from tests.pipeline.conftest import FIXTURES, Cli, Reply, ScriptedServer, ok

SECRET = "tok-5ecret-value-42"
CITY, UNITED = (65, "Manchester City FC"), (66, "Manchester United FC")
ARSENAL, CHELSEA = (57, "Arsenal FC"), (61, "Chelsea FC")


@pytest.fixture
def cli(services: Services, keys: Keys, pool: Pool) -> Cli:
    # ``pool``: the tables are emptied before the test
    return Cli(services, keys, LIVESCORE_OPERATOR="alice")


def today_list() -> str:
    kickoff = clock.now().replace(microsecond=0)
    return fd_list(
        fd_match(3001, CITY, UNITED, status=MatchStatus.LIVE, score=(1, 0), kickoff=kickoff,
                 minute=20),
        fd_match(3002, ARSENAL, CHELSEA, kickoff=kickoff + minutes(180)),
        fd_match(3003, (58, "Aston Villa FC"), (62, "Everton FC"), kickoff=kickoff + minutes(200)),
    )  # fmt: skip


async def add_feed(cli: Cli, server: ScriptedServer, *extra: str) -> None:
    ok(await cli("providers", "add", "fd-local", "--kind", "football-data",
                 "--base-url", server.url, *extra))  # fmt: skip


# -- providers add / list / enable / disable -------------------------------------------------


async def test_providers_add_list_disable_enable_round_trip(cli: Cli, conn: Conn) -> None:
    out = ok(await cli("providers", "list"))
    assert "no feeds configured" in out

    out = ok(await cli(
        "providers", "add", "fd-local", "--kind", "football-data",
        "--base-url", "http://127.0.0.1:9/mirror", "--secret-env", "FD_TOKEN",
        "--priority", "5", "--competitions", "PL, CL", "--poll-live", "20s",
        "--poll-idle", "5m", "--budget", "30",
    ))  # fmt: skip
    assert out.strip() == "added feed fd-local (football-data, priority 5)"
    feed = await get_feed(conn, "fd-local")
    assert (feed.priority, feed.competitions, feed.poll_live_s, feed.poll_idle_s) == (
        5, ("PL", "CL"), 20.0, 300.0,
    )  # fmt: skip
    assert (feed.secret_env, feed.budget_per_minute, feed.enabled) == ("FD_TOKEN", 30, True)

    again = await cli("providers", "add", "fd-local", "--kind", "espn")
    assert again.returncode == 1
    assert "a feed named 'fd-local' exists" in again.stderr
    assert "Traceback" not in again.stderr

    (line,) = ok(await cli("providers", "list", FD_TOKEN="")).splitlines()
    assert re.match(r"fd-local\s+football-data\s+enabled\s+priority=5 live=20s idle=300s", line)
    assert "secret=$FD_TOKEN (NOT SET)" in line and "base=http://127.0.0.1:9/mirror" in line
    (line,) = ok(await cli("providers", "list", FD_TOKEN=SECRET)).splitlines()
    assert "secret=$FD_TOKEN (set)" in line and SECRET not in line

    assert ok(await cli("providers", "disable", "fd-local")).strip() == "disabled feed fd-local"
    assert "disabled priority=5" in ok(await cli("providers", "list"))
    assert (await get_feed(conn, "fd-local")).enabled is False
    assert ok(await cli("providers", "enable", "fd-local")).strip() == "enabled feed fd-local"
    assert (await get_feed(conn, "fd-local")).enabled is True

    missing = await cli("providers", "disable", "nope")
    assert missing.returncode == 1 and "nope" in missing.stderr
    assert (await cli("providers", "add", "x", "--kind", "carrier-pigeon")).returncode == 2


async def test_providers_remove_deletes_the_feed_and_refuses_unknown_names(
    cli: Cli, conn: Conn
) -> None:
    ok(await cli("providers", "add", "gone", "--kind", "espn"))
    ok(await cli("providers", "add", "stays", "--kind", "espn"))
    out = ok(await cli("providers", "remove", "gone"))
    assert out.startswith("removed feed gone")
    listing = ok(await cli("providers", "list"))
    assert "stays" in listing and "gone" not in listing
    again = await cli("providers", "remove", "gone")
    assert again.returncode == 1 and "gone" in again.stderr
    assert "Traceback" not in again.stderr


@pytest.mark.parametrize(
    "base_url",
    ["file:///etc/passwd", "ftp://mirror.example/v4", "gopher://x", "127.0.0.1:9000", "http://"],
)
async def test_providers_add_accepts_only_http_and_https_base_urls(
    cli: Cli, conn: Conn, base_url: str
) -> None:
    result = await cli("providers", "add", "bad", "--kind", "football-data",
                       "--base-url", base_url)  # fmt: skip
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "is not an http:// or https:// URL with a host" in result.stderr
    assert "Traceback" not in result.stderr
    assert "no feeds configured" in ok(await cli("providers", "list"))


async def test_providers_add_max_body_sets_the_feeds_size_cap(cli: Cli, conn: Conn) -> None:
    ok(await cli("providers", "add", "big", "--kind", "espn", "--base-url",
                 "https://mirror.example", "--max-body", "20MiB"))  # fmt: skip
    ok(await cli("providers", "add", "plain", "--kind", "espn"))
    ok(await cli("providers", "add", "replayed", "--kind", "fixture",
                 "--base-url", f"{FIXTURES / 'world-cup-day'}#espn"))  # fmt: skip
    assert (await get_feed(conn, "big")).max_body_bytes == 20 * 1024 * 1024
    assert (await get_feed(conn, "plain")).max_body_bytes is None  # the 10 MiB default
    assert "max-body=20971520" in ok(await cli("providers", "list"))
    bad = await cli("providers", "add", "x", "--kind", "espn", "--max-body", "lots")
    assert bad.returncode == 2 and "not a size like 10MiB" in bad.stderr


# -- providers check -------------------------------------------------------------------------


async def test_providers_check_reports_status_latency_budget_and_matches_parsed(
    cli: Cli, http_server: ScriptedServer
) -> None:
    http_server.default = Reply(200, today_list(), {"x-requests-available-minute": "9"})
    await add_feed(cli, http_server, "--competitions", "PL")
    out = ok(await cli("providers", "check", "fd-local"))
    lines = out.splitlines()
    assert lines[0] == "feed fd-local: OK"
    assert f"  request: GET {http_server.url}/v4/matches" in lines
    assert "  status: HTTP 200" in lines
    assert re.search(r"^  latency: \d+ ms \(last attempt\)$", out, re.M)
    assert re.search(r"^  attempts: 1, total \d+ ms$", out, re.M)
    assert "  budget left: 9 of 10/min (shared)" in lines  # football-data's free tier
    assert "  provider says remaining: 9" in lines
    assert "  parsed: 3 matches" in lines
    (request,) = http_server.requests
    assert request.path == "/v4/matches"
    assert request.query["competitions"] == "PL"
    assert request.query["dateFrom"] == clock.now().date().isoformat()


async def test_providers_check_prints_no_httpx_request_lines_unless_debug(
    cli: Cli, http_server: ScriptedServer
) -> None:
    http_server.default = Reply(200, today_list())
    await add_feed(cli, http_server)
    quiet = await cli("providers", "check", "fd-local")
    ok(quiet)
    assert "HTTP Request" not in quiet.stderr + quiet.stdout
    assert "httpx" not in quiet.stderr
    loud = await cli("providers", "check", "fd-local", LIVESCORE_LOG_LEVEL="DEBUG")
    ok(loud)
    assert "HTTP Request" in loud.stderr


async def test_providers_check_fails_fast_on_rejected_credentials(
    cli: Cli, http_server: ScriptedServer
) -> None:
    http_server.default = Reply(401, '{"message": "Your API token is invalid."}')
    await add_feed(cli, http_server, "--secret-env", "FD_TOKEN")
    result = await cli("providers", "check", "fd-local", FD_TOKEN=SECRET)
    assert result.returncode == 1
    assert "feed fd-local: FAILED" in result.stdout
    assert "status: HTTP 401" in result.stdout
    assert "credentials rejected" in result.stdout
    assert "check the secret in $FD_TOKEN" in result.stdout
    assert SECRET not in result.stdout + result.stderr
    (request,) = http_server.requests  # one request, no retries
    assert request.headers["x-auth-token"] == SECRET


async def test_providers_check_shows_the_retry_after_a_server_error(
    cli: Cli, http_server: ScriptedServer
) -> None:
    # no Retry-After: a short backoff (with a Retry-After the feed would pause instead)
    http_server.script = [Reply(503, '{"message": "busy"}')]
    http_server.default = Reply(200, today_list())
    await add_feed(cli, http_server)
    out = ok(await cli("providers", "check", "fd-local"))
    assert "feed fd-local: OK" in out
    assert "  status: HTTP 200" in out.splitlines()
    assert re.search(r"^  attempts: 2, total \d+ ms$", out, re.M)
    assert re.search(r"^  retried after: [01]\.\ds$", out, re.M), out
    assert "  budget left: 8 of 10/min (shared)" in out.splitlines()
    assert "  parsed: 3 matches" in out.splitlines()
    assert len(http_server.requests) == 2


async def test_providers_check_on_a_throttling_provider_says_so_and_pauses_the_feed(
    cli: Cli, http_server: ScriptedServer, keys: Keys, redis: aioredis.Redis
) -> None:
    http_server.default = Reply(429, '{"message": "slow down"}', {"retry-after": "120"})
    await add_feed(cli, http_server)
    result = await cli("providers", "check", "fd-local")
    assert result.returncode == 1
    assert "  status: HTTP 429" in result.stdout.splitlines()
    assert "rate limited by the provider (HTTP 429); the feed pauses for 120.0s" in result.stdout
    assert len(http_server.requests) == 1  # not retried, not slept on
    assert 110 < await redis.pttl(keys.feed_pause("fd-local")) / 1000 <= 120


# -- ingest --once ---------------------------------------------------------------------------


async def test_ingest_once_polls_now_and_reports_what_changed(
    cli: Cli, http_server: ScriptedServer, conn: Conn
) -> None:
    body = today_list()
    http_server.default = Reply(200, body)
    await add_feed(cli, http_server)

    out = ok(await cli("ingest", "--once", "--provider", "fd-local"))
    city = await crosswalk.lookup(conn, "match", "football-data", "3001")
    assert city is not None
    changes = await changes_since(conn, city, 0)  # the scheduled ones have none
    assert [c.type for c in changes] == ["score:update", "match:status"]
    assert out.splitlines() == [
        "fd-local: changed, 3 observations, 3 matches created, 2 changes, 0 rejected",
        *(f"  match {city} seq {c.seq} {c.type}" for c in changes),
    ]
    match = await get_match(conn, city)
    assert (match["status"], match["homeScore"], match["awayScore"]) == ("live", 1, 0)

    # the same body again: nothing to do
    out = ok(await cli("ingest", "--once", "--provider", "fd-local"))
    assert (
        out.strip()
        == "fd-local: unchanged, 0 observations, 0 matches created, 0 changes, 0 rejected"
    )

    # a goal
    http_server.default = Reply(200, body.replace('"fullTime":{"home":1,"away":0}',
                                                  '"fullTime":{"home":2,"away":0}'))  # fmt: skip
    out = ok(await cli("ingest", "--once"))  # every enabled feed
    assert out.splitlines() == [
        "fd-local: changed, 3 observations, 0 matches created, 1 changes, 0 rejected",
        f"  match {city} seq {match['seq'] + 1} score:update",
    ]
    assert len(http_server.requests) == 3

    usage = await cli("ingest")
    assert usage.returncode == 2 and "ingest --once" in usage.stderr


async def test_ingest_once_reports_a_failing_feed_and_exits_1(
    cli: Cli, http_server: ScriptedServer
) -> None:
    http_server.default = Reply(403, "{}")
    await add_feed(cli, http_server)
    result = await cli("ingest", "--once", "--provider", "fd-local")
    assert result.returncode == 1
    assert "fd-local: FAILED:" in result.stderr and "credentials rejected" in result.stderr


# -- override --------------------------------------------------------------------------------


async def test_override_score_status_list_clear_are_audited_and_logged_as_changes(
    cli: Cli, conn: Conn, factory: Factory
) -> None:
    match = await factory.match(home="Riverside FC", away="Hilltop United",
                                status=MatchStatus.LIVE, home_score=1, away_score=0)  # fmt: skip
    match_id = str(match["id"])
    seq = (await get_match(conn, match["id"]))["seq"]

    out = ok(await cli("override", "score", match_id, "2", "1", "--reason", "VAR overturned"))
    assert out.splitlines() == [
        f"match {match_id} seq {seq + 1} score:update",
        f"match {match_id} seq {seq + 2} match:update",
    ]
    (line,) = ok(await cli("override", "list")).splitlines()
    assert line.startswith(f"match {match_id} Riverside FC v Hilltop United: score 2-1 by alice ")
    assert line.endswith("(VAR overturned)")

    out = ok(await cli("override", "status", match_id, "finished", "--reason", "ref's report"))
    assert out.splitlines()[0] == f"match {match_id} seq {seq + 3} match:status"
    assert "score 2-1, status finished by alice" in ok(await cli("override", "list"))

    state = await get_match(conn, match["id"])
    assert (state["status"], state["homeScore"], state["awayScore"]) == ("finished", 2, 1)
    assert state["override"]["who"] == "alice"

    out = ok(await cli("override", "clear", match_id, "--reason", "feeds fixed"))
    assert out.splitlines() == [f"match {match_id} seq {seq + 5} match:update"]
    assert ok(await cli("override", "list")).strip() == "no active overrides"
    assert ok(await cli("override", "clear", match_id)).strip() == "nothing changed"

    trail = await audit_trail(conn, match["id"])
    assert [(r["action"], r["who"], r["reason"]) for r in trail] == [
        ("score", "alice", "VAR overturned"),
        ("status", "alice", "ref's report"),
        ("clear", "alice", "feeds fixed"),
    ]
    assert (trail[0]["old"]["homeScore"], trail[0]["new"]["homeScore"]) == (1, 2)
    assert (trail[1]["old"]["status"], trail[1]["new"]["status"]) == ("live", "finished")
    sources = {c.source for c in await changes_since(conn, match["id"], seq)}
    assert sources == {"override"}

    no_reason = await cli("override", "score", match_id, "1", "1")
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr
    unknown = await cli("override", "score", "999999", "1", "1", "--reason", "x")
    assert unknown.returncode == 1
    assert len(unknown.stderr.strip().splitlines()) == 1 and "999999" in unknown.stderr
    bad = await cli("override", "status", match_id, "paused", "--reason", "x")
    assert bad.returncode == 2


# -- replay and record -----------------------------------------------------------------------


async def test_replay_at_speed_0_prints_progress_and_a_summary(cli: Cli) -> None:
    out = ok(await cli("replay", str(FIXTURES / "cup-final-shootout"), "--speed", "0"))
    assert re.search(
        r"^190/190 responses, 1 matches, [1-9]\d* changes applied, "
        r"(?!0 )[\d.]+ changes/s in [\d.]+s$",
        out, re.M,
    )  # fmt: skip
    summary = re.search(
        r"^summary: 190 responses, (\d+) observations \((\d+) new\), 1 matches created, "
        r"(\d+) changes, \d+ rejected, 0 ambiguous, 0 malformed$",
        out,
        re.M,
    )
    assert summary, out
    assert re.search(r"^  #\d+\s+Sevilla 2-2 AS Roma  \[finished\] seq=\d+$", out, re.M), out

    again = ok(await cli("replay", str(FIXTURES / "cup-final-shootout"), "--speed", "0"))
    assert ", 0 matches created, 0 changes," in again


async def test_record_writes_a_recording_that_replays(
    cli: Cli, http_server: ScriptedServer, conn: Conn, tmp_path: Path
) -> None:
    kickoff = clock.now().replace(microsecond=0) - minutes(30)
    live = fd_list(fd_match(4001, CITY, UNITED, status=MatchStatus.LIVE, score=(0, 1),
                            kickoff=kickoff, minute=30))  # fmt: skip

    def route(path: str, query: dict[str, str]) -> Reply:
        # the token echoed back: a recording must never keep it
        echo = f', "echo": "{SECRET}"'
        if query.get("status") == "LIVE":
            return Reply(200, live[:-1] + echo + "}")
        return Reply(200, today_list()[:-1] + echo + "}", {"x-echo-token": SECRET})

    http_server.route = route
    await add_feed(cli, http_server, "--secret-env", "FD_TOKEN", "--priority", "7")
    out_dir = tmp_path / "fd-local-rec"
    out = ok(await cli("record", "--provider", "fd-local", "--out", str(out_dir),
                       "--count", "2", "--every", "0.2s", FD_TOKEN=SECRET))  # fmt: skip
    assert out.splitlines()[-1] == f"recorded 4 responses into {out_dir}"
    assert len(http_server.requests) == 4
    assert all(r.headers["x-auth-token"] == SECRET for r in http_server.requests)

    recording = load_recording(out_dir)
    assert recording.manifest.name == "fd-local-rec"
    assert [(f.name, f.kind, f.priority) for f in recording.manifest.feeds] == [
        ("fd-local", "football-data", 7)
    ]
    assert [r.purpose for r in recording.responses] == ["today", "live", "today", "live"]
    for path in out_dir.iterdir():
        assert SECRET not in path.read_text(), path.name

    out = ok(await cli("replay", str(out_dir), "--speed", "0"))
    assert "summary: 4 responses" in out
    assert "Manchester City FC 0-1 Manchester United FC  [live]" in out
    city = await crosswalk.lookup(conn, "match", "football-data", "4001")
    assert city is not None
    assert (await get_match(conn, city))["awayScore"] == 1


async def test_link_points_a_provider_id_at_a_canonical_match(cli: Cli, factory: Factory) -> None:
    match = await factory.match(home="Link Home", away="Link Away")
    out = ok(await cli("link", "match", "espn", "777", str(match["id"])))
    assert f"espn match 777 -> match {match['id']}" in out
    missing = await cli("link", "team", "espn", "1", "999999")
    assert missing.returncode == 1 and "team 999999 not found" in missing.stderr
