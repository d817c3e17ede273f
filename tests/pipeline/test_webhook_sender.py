"""One webhook attempt (``pipeline.webhooks.WebhookSender.post``) against real local
receivers that misbehave: the limits that apply to providers apply here too."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks import Webhook

from livescore.config import load_settings
from livescore.limits import MAX_WEBHOOK_RESPONSE_BYTES
from livescore.webhooks import secret_key
from pipeline.webhooks import WebhookSender

SECRET = "whsec_" + base64.b64encode(b"s" * 32).decode()
BODY = b'{"type":"score:update","matchId":1,"seq":1,"data":{},"ts":null}'

Handler = Callable[[BaseHTTPRequestHandler], None]


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], str]]:
    """``serve(handler)`` -> the URL of a local server answering POSTs with it."""
    servers: list[ThreadingHTTPServer] = []
    stop = threading.Event()

    def start(handle: Handler) -> str:
        class Answer(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", "0")))
                self.server.seen_headers = dict(self.headers)  # type: ignore[attr-defined]
                handle(self)

            def log_message(self, format: str, *args: object) -> None:
                return

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
        httpd.daemon_threads = True
        httpd.stop = stop  # type: ignore[attr-defined]
        servers.append(httpd)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{httpd.server_address[1]}/hook"

    try:
        yield start
    finally:
        stop.set()
        for httpd in servers:
            httpd.shutdown()
            httpd.server_close()


def sender(timeout_s: str = "3") -> WebhookSender:
    # no pool is needed for ``post``; the sender's client is closed by each test
    return WebhookSender(None, load_settings({"LIVESCORE_WEBHOOK_TIMEOUT": timeout_s}))  # type: ignore[arg-type]


async def test_an_endless_2xx_answer_is_read_up_to_the_cap_and_counts_as_delivered(
    serve: Callable[[Handler], str],
) -> None:
    def endless(req: BaseHTTPRequestHandler) -> None:
        req.send_response(200)
        req.send_header("transfer-encoding", "chunked")
        req.end_headers()
        chunk = b"x" * 8192
        try:
            while not req.server.stop.is_set():  # type: ignore[attr-defined]
                req.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:
            return  # the sender stopped reading and closed the connection

    url = serve(endless)
    out = sender(timeout_s="120")  # reading to the timeout could not pass for a slow read
    try:
        started = time.monotonic()
        outcome = await out.post(url, secret_key(SECRET, "S"), "msg_1_1_1", BODY)
        assert outcome.delivered and outcome.status == 200
        assert time.monotonic() - started < 60, "the body was read to the timeout, not the cap"
        assert len(outcome.detail) <= MAX_WEBHOOK_RESPONSE_BYTES
    finally:
        await out.aclose()


async def test_a_receiver_that_never_answers_fails_the_attempt_at_the_timeout(
    serve: Callable[[Handler], str],
) -> None:
    url = serve(lambda req: req.server.stop.wait(60))  # type: ignore[attr-defined]
    out = sender(timeout_s="1")
    try:
        started = time.monotonic()
        outcome = await out.post(url, secret_key(SECRET, "S"), "msg_1_1_1", BODY)
        assert not outcome.delivered and outcome.status is None
        assert "no answer within 1s (LIVESCORE_WEBHOOK_TIMEOUT)" in outcome.detail
        # not held until the receiver gives up (60 s): the timeout ended it
        assert time.monotonic() - started < 30
    finally:
        await out.aclose()


@pytest.mark.parametrize(
    ("status", "delivered", "gone", "says"),
    [
        (204, True, False, ""),
        (410, False, True, "HTTP 410 Gone"),
        (500, False, False, "HTTP 500"),
        (302, False, False, "redirects are not followed"),
    ],
)
async def test_the_answer_decides_delivered_gone_or_retry(
    serve: Callable[[Handler], str], status: int, delivered: bool, gone: bool, says: str
) -> None:
    def answer(req: BaseHTTPRequestHandler) -> None:
        req.send_response(status)
        if status == 302:
            req.send_header("location", "http://elsewhere.example/")
        req.send_header("content-length", "0")
        req.end_headers()

    url = serve(answer)
    out = sender()
    try:
        outcome = await out.post(url, secret_key(SECRET, "S"), "msg_1_1_1", BODY)
    finally:
        await out.aclose()
    assert (outcome.delivered, outcome.gone, outcome.status) == (delivered, gone, status)
    assert says in outcome.detail


@pytest.mark.parametrize("status", [429, 503])
async def test_a_retry_after_on_a_refusal_is_read_and_reported(
    serve: Callable[[Handler], str], status: int
) -> None:
    def busy(req: BaseHTTPRequestHandler) -> None:
        req.send_response(status)
        req.send_header("retry-after", "120")
        req.send_header("content-length", "0")
        req.end_headers()

    out = sender()
    try:
        outcome = await out.post(serve(busy), secret_key(SECRET, "S"), "msg_1_1_1", BODY)
    finally:
        await out.aclose()
    assert not outcome.delivered and not outcome.gone
    assert outcome.retry_after_s == 120.0
    assert f"HTTP {status}" in outcome.detail and "Retry-After 120s" in outcome.detail


async def test_the_request_carries_verifiable_standard_webhooks_headers(
    serve: Callable[[Handler], str],
) -> None:
    seen: dict[str, str] = {}

    def answer(req: BaseHTTPRequestHandler) -> None:
        seen.update({k.lower(): v for k, v in req.headers.items()})
        req.send_response(200)
        req.send_header("content-length", "0")
        req.end_headers()

    url = serve(answer)
    out = sender()
    try:
        assert (await out.post(url, secret_key(SECRET, "S"), "msg_7_1_1", BODY)).delivered
    finally:
        await out.aclose()
    assert seen["webhook-id"] == "msg_7_1_1"
    assert seen["content-type"] == "application/json"
    Webhook(SECRET).verify(BODY, seen)
