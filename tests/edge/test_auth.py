"""API keys: made and revoked by the CLI, stored hashed; 401 and 403 are distinct."""

from __future__ import annotations

import hashlib
import secrets
import subprocess

import httpx
import pytest

from livescore.errors import Conflict, InvalidChange, NotFound
from store.apikeys import create_key, find_key, list_keys, revoke_key
from store.db import Conn
from tests.conftest import Services
from tests.edge.conftest import LIVESCORE, ROOT, EdgeNode, EdgeServers, auth
from tests.edge.test_errors import assert_envelope
from tests.factories import Factory

pytestmark = pytest.mark.slow

EVENT = {"minute": 1, "type": "text", "message": "auth check"}


async def test_keys_are_stored_hashed_and_shown_once(conn: Conn) -> None:
    name = f"hashed-{secrets.token_hex(3)}"
    created = await create_key(conn, name)
    assert created.plain.startswith("lsk_") and len(created.plain) > 40
    cur = await conn.execute("SELECT key_hash, prefix FROM api_keys WHERE name = %s", (name,))
    row = await cur.fetchone()
    assert row is not None
    assert row["key_hash"] == hashlib.sha256(created.plain.encode()).hexdigest()
    assert created.plain not in str(row) and row["prefix"] == created.plain[:10]
    found = await find_key(conn, created.plain)
    assert found is not None and found.name == name and not found.revoked
    assert await find_key(conn, created.plain + "x") is None
    assert name in [k.name for k in await list_keys(conn)]


async def test_key_names_are_unique_and_checked(conn: Conn) -> None:
    name = f"twice-{secrets.token_hex(3)}"
    await create_key(conn, name)
    with pytest.raises(Conflict, match="already exists"):
        await create_key(conn, name)
    with pytest.raises(InvalidChange):
        await create_key(conn, "has spaces")
    with pytest.raises(NotFound):
        await revoke_key(conn, f"missing-{secrets.token_hex(3)}")


async def test_401_without_a_key_403_for_unknown_and_revoked(
    edge: EdgeNode, conn: Conn, factory: Factory
) -> None:
    match = await factory.match()
    path = f"/api/matches/{match['id']}/commentary"
    created = await create_key(conn, f"soon-revoked-{secrets.token_hex(3)}")
    async with httpx.AsyncClient(base_url=edge.url) as http:
        missing = await http.post(path, json=EVENT)
        malformed = await http.post(path, json=EVENT, headers={"Authorization": created.plain})
        unknown = await http.post(path, json=EVENT, headers=auth("lsk_" + "x" * 43))
        accepted = await http.post(path, json=EVENT, headers=auth(created.plain))
        await revoke_key(conn, created.key.name)
        revoked = await http.post(path, json=EVENT, headers=auth(created.plain))
        lowercase_scheme = await http.post(
            path, json=EVENT, headers={"Authorization": f"bearer {created.plain}"}
        )
    assert_envelope(missing, 401, "missing_api_key")
    assert missing.headers["www-authenticate"] == 'Bearer realm="livescore"'
    assert_envelope(malformed, 401, "malformed_authorization")
    assert "invalid_request" in malformed.headers["www-authenticate"]
    assert_envelope(unknown, 403, "unknown_api_key")
    assert accepted.status_code == 201
    assert_envelope(revoked, 403, "revoked_api_key")
    assert created.key.name in revoked.json()["error"]["message"]
    assert_envelope(lowercase_scheme, 403, "revoked_api_key")  # the scheme is case-insensitive
    messages = {r.json()["error"]["message"] for r in (missing, malformed, unknown, revoked)}
    assert len(messages) == 4


def test_cli_creates_a_working_key_and_revokes_it(
    services: Services, edge_server: EdgeServers
) -> None:
    (node,) = edge_server.start(1)
    env = services.env(DATABASE_URL=services.database_url)
    name = f"cli-{secrets.token_hex(3)}"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [LIVESCORE, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
        )

    created = cli("apikey", "create", name)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("lsk_") and "\n" not in key
    assert "not shown again" in created.stderr
    body = {"sport": "football", "homeTeam": f"CLI {name}", "awayTeam": f"CLI2 {name}",
            "startTime": "2030-01-01T00:00:00Z"}  # fmt: skip
    made = httpx.post(f"{node.url}/api/matches", json=body, headers=auth(key))
    assert made.status_code == 201, made.text

    duplicate = cli("apikey", "create", name)
    assert duplicate.returncode == 1 and "already exists" in duplicate.stderr
    revoked = cli("apikey", "revoke", name)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    refused = httpx.post(f"{node.url}/api/matches", json=body, headers=auth(key))
    assert refused.status_code == 403
    missing = cli("apikey", "revoke", f"nobody-{secrets.token_hex(3)}")
    assert missing.returncode == 1 and "not found" in missing.stderr


async def test_each_key_has_its_own_limit(
    edge_server: EdgeServers, conn: Conn, factory: Factory
) -> None:
    # behind one trusted proxy each request comes "from" its own address, so only the
    # per-key limit can bite
    (node,) = edge_server.start(1, LIVESCORE_RATE_LIMIT="3/3600", LIVESCORE_PROXIES_COUNT="1")
    match = await factory.match()
    first = await create_key(conn, f"rl-{secrets.token_hex(3)}")
    second = await create_key(conn, f"rl-{secrets.token_hex(3)}")
    path = f"/api/matches/{match['id']}/commentary"
    async with httpx.AsyncClient(base_url=node.url) as http:

        async def post(key: str, n: int) -> httpx.Response:
            headers = {**auth(key), "X-Forwarded-For": f"198.51.100.{n}"}
            return await http.post(path, json=EVENT, headers=headers)

        firsts = [await post(first.plain, n) for n in range(4)]
        other = await post(second.plain, 10)
    assert [r.status_code for r in firsts] == [201, 201, 201, 429]
    assert_envelope(firsts[-1], 429, "rate_limited")
    assert firsts[-1].json()["error"]["details"]["scope"] == "key"
    assert int(firsts[-1].headers["retry-after"]) > 0
    assert other.status_code == 201
