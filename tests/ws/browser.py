"""A headless Chromium driven over the DevTools protocol (no Playwright download:
Debian's ``chromium``; one WebSocket to the page target), and a page of ours on
another origin than any edge node, for CORS in a real browser."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import shutil
import subprocess
import threading
import urllib.request
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.servers import free_port
from tests.waiting import eventually, eventually_blocking

CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")


def find_chromium() -> str | None:
    for path in CHROMIUM_PATHS:
        if os.access(path, os.X_OK):
            return path
    return shutil.which("chromium")


def chromium_or_skip() -> str:
    """The chromium binary; skips the test where there is none (fails it in CI,
    where ``LIVESCORE_REQUIRE_TOOLS`` is set)."""
    binary = find_chromium()
    if binary is None:
        if os.environ.get("LIVESCORE_REQUIRE_TOOLS"):
            pytest.fail("chromium is required (LIVESCORE_REQUIRE_TOOLS is set) but not installed")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return binary


class Browser:
    def __init__(self, binary: str, profile: Path) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                f"--user-data-dir={profile}", f"--remote-debugging-port={self.port}",
                "--window-size=900,700", "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.ws: ClientConnection | None = None
        self._ids = itertools.count(1)

    def _page_ws_url(self, within: float = 20.0) -> str:
        def page() -> str | None:
            if self.proc.poll() is not None:
                raise RuntimeError("chromium exited before exposing a page target")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list") as r:
                    for target in orjson.loads(r.read()):
                        if target.get("type") == "page":
                            return str(target["webSocketDebuggerUrl"])
            except OSError:
                pass
            return None

        return eventually_blocking(page, within, "chromium to expose a page target")

    async def open(self) -> Browser:
        url = await asyncio.to_thread(self._page_ws_url)
        self.ws = await connect(url, max_size=64 * 1024 * 1024)
        return self

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        assert self.ws is not None
        ident = next(self._ids)
        await self.ws.send(orjson.dumps({"id": ident, "method": method, "params": params}).decode())
        while True:
            reply = orjson.loads(await self.ws.recv())
            if reply.get("id") == ident:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))

    async def navigate(self, url: str) -> None:
        await self.send("Page.enable")
        await self.send("Page.navigate", url=url)

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    async def wait_for(self, expression: str, within: float = 20.0) -> Any:
        """Poll a JS expression until it is truthy; its value."""
        return await eventually(
            lambda: self.evaluate(expression), within, f"{expression!r} to be truthy", every=0.1
        )

    async def screenshot(self, path: Path) -> None:
        result = await self.send("Page.captureScreenshot", format="png")
        data = base64.b64decode(result["data"])

        def save() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

        await asyncio.to_thread(save)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        self.proc.terminate()
        try:
            await asyncio.to_thread(self.proc.wait, 10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@contextlib.contextmanager
def serving(page: bytes) -> Iterator[str]:
    """``page`` served (any path) by a second HTTP server on another port: its
    origin, another origin than any edge node."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextlib.asynccontextmanager
async def on_another_origin(page: bytes, profile: Path) -> AsyncIterator[Browser]:
    """Chromium showing ``page`` from another origin (``serving``), once its script
    has set ``window.ready``; skips the test where chromium is not installed."""
    binary = chromium_or_skip()
    with serving(page) as origin:
        browser = await Browser(binary, profile).open()
        try:
            await browser.navigate(f"{origin}/")
            await browser.wait_for("window.ready === true")
            yield browser
        finally:
            await browser.close()
