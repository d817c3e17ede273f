"""CORS in a real headless Chromium: a page served from another origin (a second
local HTTP server, another port) reads the API, revalidates with If-None-Match
(preflighted), posts commentary with Authorization and JSON (preflighted) and
reads ETag, Location and an error's body; a node that does not list the page's
origin is refused by the browser itself."""

from __future__ import annotations

import secrets
from pathlib import Path

import orjson
import pytest

from store.apikeys import create_key
from store.db import Conn
from tests.factories import Factory
from tests.ws.browser import chromium_or_skip, on_another_origin
from tests.ws.conftest import EdgeFactory

PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>another origin</title></head>
<body><p>a scoreboard app on another origin</p>
<script>
window.run = async (base, blocked, key, matchId) => {
  const out = {};
  const list = await fetch(base + "/api/matches");
  out.list = [list.status, list.headers.get("ETag"), (await list.json()).data.length];
  const one = await fetch(`${base}/api/matches/${matchId}`, {cache: "no-store"});
  const etag = one.headers.get("ETag");
  const again = await fetch(`${base}/api/matches/${matchId}`,
                            {cache: "no-store", headers: {"If-None-Match": etag}});
  out.revalidated = [one.status, etag, again.status];
  const post = await fetch(`${base}/api/matches/${matchId}/commentary`, {
    method: "POST",
    headers: {"Authorization": "Bearer " + key, "Content-Type": "application/json"},
    body: JSON.stringify({minute: 12, type: "goal", team: "home", message: "from another origin"}),
  });
  out.post = [post.status, post.headers.get("Location"), (await post.json()).data.message];
  const bad = await fetch(`${base}/api/matches/${matchId}/commentary`, {
    method: "POST",
    headers: {"Authorization": "Bearer " + key, "Content-Type": "application/json"},
    body: JSON.stringify({minute: -1}),
  });
  out.error = [bad.status, (await bad.json()).error.code];
  try {
    await fetch(blocked + "/api/matches");
    out.blocked = "read";
  } catch (e) {
    out.blocked = e.name;
  }
  return out;
};
window.ready = true;
</script></body></html>
"""


@pytest.mark.slow
async def test_a_page_on_another_origin_reads_and_writes(
    edges: EdgeFactory, factory: Factory, conn: Conn, tmp_path: Path
) -> None:
    chromium_or_skip()  # before starting nodes for nothing
    (node,) = edges(1)  # the default: any origin
    (strict,) = edges(1, LIVESCORE_CORS_ORIGINS="https://scores.example")
    match = await factory.match()
    key = (await create_key(conn, f"cors-{secrets.token_hex(4)}")).plain
    async with on_another_origin(PAGE, tmp_path / "chromium") as browser:
        args = ", ".join(orjson.dumps(a).decode() for a in (node.url, strict.url, key, match["id"]))
        await browser.evaluate(
            f"window.run({args}).then(r => window.result = r,"
            " e => window.result = {failed: String(e)})"
        )
        result = await browser.wait_for("window.result")
    assert "failed" not in result, result
    status, etag, count = result["list"]
    assert status == 200 and etag.startswith('"') and count >= 1
    assert result["revalidated"][0] == 200 and result["revalidated"][2] == 304
    assert result["post"] == [201, f"/api/matches/{match['id']}/commentary", "from another origin"]
    assert result["error"] == [422, "validation_failed"]
    # the strict node does not list the page's origin: the browser withholds the answer
    assert result["blocked"] == "TypeError"
