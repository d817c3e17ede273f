"""CORS in a real headless Chromium: a page served from another origin (a second
local HTTP server, another port) reads the API, revalidates with If-None-Match
(preflighted), posts commentary with Authorization and JSON (preflighted) and
reads ETag, Location and an error's body; a node that does not list the page's
origin is refused by the browser itself."""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from store.apikeys import create_key
from store.db import Conn
from tests.factories import Factory
from tests.ws.browser import Browser, find_chromium
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


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def page_origin() -> Iterator[str]:
    """A second HTTP server on another port: another origin than any edge node."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.mark.slow
async def test_a_page_on_another_origin_reads_and_writes(
    edges: EdgeFactory, factory: Factory, conn: Conn, page_origin: str, tmp_path: Path
) -> None:
    binary = find_chromium()
    if binary is None:
        if os.environ.get("LIVESCORE_REQUIRE_TOOLS"):
            pytest.fail("chromium is required (LIVESCORE_REQUIRE_TOOLS is set) but not installed")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    (node,) = edges(1)  # the default: any origin
    (strict,) = edges(1, LIVESCORE_CORS_ORIGINS="https://scores.example")
    match = await factory.match()
    key = (await create_key(conn, f"cors-{secrets.token_hex(4)}")).plain
    browser = await Browser(binary, tmp_path / "chromium").open()
    try:
        await browser.navigate(f"{page_origin}/")
        await browser.wait_for("window.ready === true")
        args = ", ".join(orjson.dumps(a).decode() for a in (node.url, strict.url, key, match["id"]))
        await browser.evaluate(
            f"window.run({args}).then(r => window.result = r,"
            " e => window.result = {failed: String(e)})"
        )
        result = await browser.wait_for("window.result")
    finally:
        await browser.close()
    assert "failed" not in result, result
    status, etag, count = result["list"]
    assert status == 200 and etag.startswith('"') and count >= 1
    assert result["revalidated"][0] == 200 and result["revalidated"][2] == 304
    assert result["post"] == [201, f"/api/matches/{match['id']}/commentary", "from another origin"]
    assert result["error"] == [422, "validation_failed"]
    # the strict node does not list the page's origin: the browser withholds the answer
    assert result["blocked"] == "TypeError"
