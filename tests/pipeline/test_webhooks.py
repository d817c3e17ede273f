"""Signed webhooks end to end: real ``livescore worker`` processes (relay, dispatch
loop, SAQ ``webhook`` jobs) POST changes to real local receivers, and every
request is verified with the ``standardwebhooks`` package.

Changes are written through the store's one write path; the worker's relay
publishes them and adds the deliveries; its jobs send them.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook

from livescore.keys import Keys
from livescore.model import MatchPatch, MatchStatus
from livescore.webhooks import Endpoint, message_id
from store import change_codec
from store import webhooks as store
from store.changes import changes_since
from store.db import Conn, Pool
from store.writes import apply_change
from tests.conftest import Services
from tests.factories import Factory
from tests.pipeline.conftest import cli_env
from tests.servers import free_port
from tests.waiting import eventually

SECRET_A = "whsec_" + base64.b64encode(b"a-secret-of-thirty-two-bytes!!!!").decode()
SECRET_B = "whsec_" + base64.b64encode(b"another-secret-thirty-two-bytes!").decode()
SECRETS = {"HOOK_SECRET_A": SECRET_A, "HOOK_SECRET_B": SECRET_B}
LIVESCORE = os.path.join(os.path.dirname(sys.executable), "livescore")

# -- a real receiver ----------------------------------------------------------------------

#: What a receiver answers a request with: a status, or None to hang (never answer).
Answer = Callable[["Hit"], "int | None"]
#: Extra headers of each reply (e.g. ``Retry-After``), decided per hit like the status.
ReplyHeaders = Callable[["Hit"], dict[str, str]]


@dataclass
class Hit:
    headers: dict[str, str]
    body: bytes
    status: int | None = None
    #: set once the receiver answered (a hanging request never is, until released)
    done: bool = False


class Receiver:
    """A local HTTP server taking webhook POSTs; ``answer`` decides each reply."""

    def __init__(self, secret: str, port: int = 0) -> None:
        self.secret = secret
        self.answer: Answer = lambda hit: 200
        self.reply_headers: ReplyHeaders = lambda hit: {}
        self.hits: list[Hit] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self.httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                hit = Hit({k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
                with receiver._lock:
                    receiver.hits.append(hit)
                status = receiver.answer(hit)
                if status is None:
                    receiver.release.wait(120)
                    status = 200
                hit.status = status
                self.send_response(status)
                for name, value in receiver.reply_headers(hit).items():
                    self.send_header(name, value)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                hit.done = True

            def log_message(self, format: str, *args: object) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.release.set()
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def verified(self) -> list[Hit]:
        """Every request so far, each checked against the secret (raises if one fails)."""
        with self._lock:
            hits = list(self.hits)
        verifier = Webhook(self.secret)
        for hit in hits:
            verifier.verify(hit.body, hit.headers)
        return hits

    def delivered_ids(self) -> list[str]:
        """webhook-ids of the requests answered 2xx, in arrival order."""
        return [
            h.headers["webhook-id"]
            for h in self.verified()
            if h.done and h.status is not None and 200 <= h.status < 300
        ]


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(secret: str = SECRET_A, *, port: int = 0, start: bool = True) -> Receiver:
        receiver = Receiver(secret, port)
        made.append(receiver)
        if start:
            receiver.start()
        return receiver

    try:
        yield make
    finally:
        for receiver in made:
            receiver.stop()


# -- a real worker ------------------------------------------------------------------------


@pytest.fixture
def worker(
    services: Services, keys: Keys, tmp_path: Path
) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """``worker(**env)`` starts a ``livescore worker`` on this test's prefix with the
    endpoints' secrets in its environment; stopped (SIGTERM) after the test."""
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(**env: str) -> subprocess.Popen[bytes]:
        log_path = tmp_path / f"worker-{len(procs)}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [LIVESCORE, "worker"],
                env=services.env(LIVESCORE_REDIS_PREFIX=keys.prefix, **SECRETS, **env),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        procs.append((proc, log_path))
        return proc

    try:
        yield start
    finally:
        for proc, log_path in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            print(f"--- {log_path.name}\n{log_path.read_text()[-6000:]}")


# -- helpers ------------------------------------------------------------------------------


async def add(conn: Conn, name: str, url: str, **options: Any) -> Endpoint:
    options.setdefault("events", ("score:update", "match:status"))
    options.setdefault("secret_env", "HOOK_SECRET_A")
    return await store.add_endpoint(conn, Endpoint(name=name, url=url, **options))


async def live_match(factory: Factory) -> int:
    match = await factory.match(status=MatchStatus.LIVE)
    return int(match["id"])


async def score(conn: Conn, match_id: int, home: int, away: int) -> None:
    changes = await apply_change(
        conn, match_id, MatchPatch(source="test", home_score=home, away_score=away)
    )
    assert changes, "the score did not change"


async def deliveries(conn: Conn, name: str) -> list[store.Delivery]:
    return sorted(await store.list_deliveries(conn, name, limit=1000), key=lambda d: d.id)


async def all_delivered(conn: Conn, name: str) -> bool:
    """Every delivery of ``name`` recorded as delivered (the worker records each
    after its receiver answered, so a test waits for it)."""
    rows = await deliveries(conn, name)
    return bool(rows) and all(d.state == "delivered" for d in rows)


async def published(conn: Conn, match_id: int) -> bool:
    cur = await conn.execute(
        "SELECT bool_and(published_at IS NOT NULL) AS ok FROM match_changes WHERE match_id = %s",
        (match_id,),
    )
    row = await cur.fetchone()
    return bool(row and row["ok"])


# -- the tests ----------------------------------------------------------------------------


async def test_each_wanted_change_is_posted_once_in_seq_order_signed_with_a_stable_id(
    pool: Pool, conn: Conn, factory: Factory, receivers: Callable[..., Receiver],
    worker: Callable[..., subprocess.Popen[bytes]],
) -> None:  # fmt: skip
    every, only = receivers(SECRET_A), receivers(SECRET_B)
    a, b = await live_match(factory), await live_match(factory)
    hook = await add(conn, "every", every.url)
    narrow = await add(
        conn, "only-b", only.url, events=("score:update",), match_ids=(b,),
        secret_env="HOOK_SECRET_B",
    )  # fmt: skip
    worker()
    await score(conn, a, 1, 0)
    await score(conn, b, 0, 1)
    await score(conn, a, 2, 0)
    await factory.event(a, message="a commentary line nobody asked for")

    log_a = [c for c in await changes_since(conn, a, 0) if c.type != "commentary:new"]
    log_b = await changes_since(conn, b, 0)
    wanted_a = [message_id(hook.id, a, c.seq) for c in log_a]
    wanted_b = [message_id(hook.id, b, c.seq) for c in log_b]
    await eventually(lambda: len(every.delivered_ids()) == len(log_a) + len(log_b), 60,
                     "every wanted change at the receiver")  # fmt: skip
    await eventually(lambda: len(only.delivered_ids()) == 1, 30, "match b's score at only-b")

    got = every.verified()
    ids = [h.headers["webhook-id"] for h in got]
    assert len(ids) == len(set(ids)), "a change was delivered twice"
    assert [i for i in ids if i in wanted_a] == wanted_a  # seq order per match
    assert [i for i in ids if i in wanted_b] == wanted_b
    by_id = {h.headers["webhook-id"]: h for h in got}
    for change in log_a:  # the body is the very message a WebSocket client gets
        assert by_id[message_id(hook.id, a, change.seq)].body == change_codec.encode(change)
    (only_hit,) = only.verified()
    (b_score,) = [c for c in log_b if c.type == "score:update"]
    assert only_hit.headers["webhook-id"] == message_id(narrow.id, b, b_score.seq)
    assert only_hit.body == change_codec.encode(b_score)
    await eventually(lambda: all_delivered(conn, "every"), 30, "the worker to record them")


async def test_a_receiver_down_then_back_gets_each_delivery_once_in_order_after_retries(
    pool: Pool, conn: Conn, factory: Factory, receivers: Callable[..., Receiver],
    worker: Callable[..., subprocess.Popen[bytes]],
) -> None:  # fmt: skip
    down = receivers(SECRET_A, start=False)  # nothing listens on its port yet
    a, b = await live_match(factory), await live_match(factory)
    await add(conn, "flaky", down.url)
    # retries 0.2 s, then 1 s, 5 s, 25 s after the one before (offsets 0.2, 1.2, 6.2, 31.2)
    worker(LIVESCORE_WEBHOOK_BACKOFF="0.2")
    for goals in (1, 2, 3):
        await score(conn, a, goals, 0)
    await score(conn, b, 0, 1)

    async def head_retried() -> bool:
        rows = await deliveries(conn, "flaky")  # a: status + 3 scores, b: status + 1 score
        if len(rows) != 6:
            return False
        heads = [min((d for d in rows if d.match_id == m), key=lambda d: d.seq or 0)
                 for m in (a, b)]  # fmt: skip
        return all(h.attempts >= 2 for h in heads)

    await eventually(head_retried, 30, "both matches' first deliveries to be retried")
    rows = await deliveries(conn, "flaky")
    for match_id in (a, b):
        mine = sorted((d for d in rows if d.match_id == match_id), key=lambda d: d.seq or 0)
        assert mine[0].last_error and "Connect" in mine[0].last_error, mine[0]
        # a failing delivery holds the later ones of its match (and only those)
        assert [d.attempts for d in mine[1:]] == [0] * (len(mine) - 1)
        assert all(d.state == "pending" for d in mine)

    down.start()
    await eventually(lambda: len(down.delivered_ids()) == 6, 60, "the backlog once it is back")
    ids = down.delivered_ids()
    assert len(set(ids)) == 6, f"delivered more than once: {ids}"
    for match_id in (a, b):
        seqs = [int(i.rsplit("_", 1)[1]) for i in ids if i.split("_")[2] == str(match_id)]
        assert seqs == sorted(seqs)
    await eventually(lambda: all_delivered(conn, "flaky"), 30, "the worker to record them")


async def test_a_receiver_asking_to_retry_after_an_hour_is_not_retried_sooner(
    pool: Pool, conn: Conn, factory: Factory, receivers: Callable[..., Receiver],
    worker: Callable[..., subprocess.Popen[bytes]],
) -> None:  # fmt: skip
    busy = receivers(SECRET_A)
    busy.answer = lambda hit: 503
    busy.reply_headers = lambda hit: {"Retry-After": "3600"}
    match_id = await live_match(factory)
    await add(conn, "busy", busy.url)
    worker(LIVESCORE_WEBHOOK_BACKOFF="0.2")  # the schedule alone would retry within seconds
    await score(conn, match_id, 1, 0)

    async def refused_once() -> store.Delivery | None:
        rows = [d for d in await deliveries(conn, "busy") if d.attempts >= 1]
        return rows[0] if rows else None

    head = await eventually(refused_once, 30, "the first attempt to be refused and recorded")
    assert head.last_status == 503 and head.last_error and "Retry-After 3600s" in head.last_error
    assert head.last_attempt_at is not None
    waits = (head.next_attempt_at - head.last_attempt_at).total_seconds()
    assert 3500 < waits <= 3700, f"next attempt {waits:.0f}s after the refusal"
    # the schedule's own points (0.2 s, 1.2 s, 6.2 s) pass without another request
    await asyncio.sleep(7)
    assert len(busy.verified()) == 1
    assert [d.attempts for d in await deliveries(conn, "busy")] == [1, 0]


async def test_a_receiver_answering_410_disables_its_endpoint(
    pool: Pool, conn: Conn, factory: Factory, receivers: Callable[..., Receiver],
    worker: Callable[..., subprocess.Popen[bytes]],
) -> None:  # fmt: skip
    gone = receivers(SECRET_A)
    gone.answer = lambda hit: 410
    match_id = await live_match(factory)
    await add(conn, "gone", gone.url)
    worker()
    await score(conn, match_id, 1, 0)

    async def disabled() -> Endpoint | None:
        endpoint = await store.get_endpoint(conn, "gone")
        return None if endpoint.enabled else endpoint

    endpoint = await eventually(disabled, 30, "the endpoint to be disabled")
    assert endpoint.disabled_reason and "410" in endpoint.disabled_reason
    assert len(gone.verified()) == 1
    before = await deliveries(conn, "gone")
    await score(conn, match_id, 2, 0)
    await eventually(lambda: published(conn, match_id), 30, "the relay to publish the change")
    # the relay added deliveries in the transaction that published: none for a disabled endpoint
    assert [d.id for d in await deliveries(conn, "gone")] == [d.id for d in before]
    assert [d.state for d in before] == ["pending"] * len(before)  # sent again if re-enabled


async def test_a_hanging_receiver_delays_neither_another_endpoint_nor_the_relay(
    pool: Pool, conn: Conn, factory: Factory, receivers: Callable[..., Receiver],
    worker: Callable[..., subprocess.Popen[bytes]],
) -> None:  # fmt: skip
    slow, fast = receivers(SECRET_A), receivers(SECRET_B)
    slow.answer = lambda hit: None  # accepts the request, never answers
    match_id = await live_match(factory)
    await add(conn, "slow", slow.url)
    await add(conn, "fast", fast.url, secret_env="HOOK_SECRET_B")
    worker(LIVESCORE_WEBHOOK_TIMEOUT="90")
    await score(conn, match_id, 1, 0)
    await eventually(lambda: len(slow.hits) == 1, 30, "the slow receiver to get a request")
    started = time.monotonic()
    for goals in (2, 3, 4):
        await score(conn, match_id, goals, 0)
    await eventually(lambda: published(conn, match_id), 30, "the relay to publish every change")
    log = await changes_since(conn, match_id, 0)
    await eventually(lambda: len(fast.delivered_ids()) == len(log), 30, "every change at fast")
    assert time.monotonic() - started < 60
    # all of it while the slow receiver still holds its first request open
    assert [h.done for h in slow.hits] == [False]
    fast_ids = fast.delivered_ids()
    assert [int(i.rsplit("_", 1)[1]) for i in fast_ids] == [c.seq for c in log]


async def test_an_unset_secret_fails_the_attempt_naming_the_variable_and_sends_nothing(
    pool: Pool, conn: Conn, factory: Factory, receivers: Callable[..., Receiver],
    worker: Callable[..., subprocess.Popen[bytes]],
) -> None:  # fmt: skip
    receiver = receivers(SECRET_A)
    match_id = await live_match(factory)
    await add(conn, "unsigned", receiver.url, secret_env="HOOK_SECRET_NOT_SET")
    worker()
    await score(conn, match_id, 1, 0)

    async def failed() -> store.Delivery | None:
        rows = await deliveries(conn, "unsigned")
        head = min(rows, key=lambda d: d.seq or 0) if rows else None
        return head if head and head.attempts >= 1 else None

    first = await eventually(failed, 30, "the first attempt to fail")
    assert first.state == "pending" and first.last_status is None
    assert "$HOOK_SECRET_NOT_SET is not set in the worker's environment" in (first.last_error or "")
    assert receiver.hits == []  # nothing unsigned ever leaves


# -- the CLI ------------------------------------------------------------------------------


def cli(services: Services, keys: Keys, *args: str, ok: bool = True) -> str:
    result = subprocess.run(
        [LIVESCORE, "webhooks", *args],
        env=cli_env(services, keys.prefix, **SECRETS),
        capture_output=True,
        text=True,
        timeout=90,
    )
    if ok:
        assert result.returncode == 0, result.stdout + result.stderr
    else:
        assert result.returncode != 0, result.stdout + result.stderr
    return result.stdout + result.stderr


async def test_the_cli_adds_lists_tests_disables_enables_and_removes_an_endpoint(
    pool: Pool, conn: Conn, services: Services, keys: Keys,
    receivers: Callable[..., Receiver], worker: Callable[..., subprocess.Popen[bytes]],
) -> None:  # fmt: skip
    receiver = receivers(SECRET_A)
    worker()
    out = cli(services, keys, "add", "partner", receiver.url, "--events",
              "score:update,match:status", "--competitions", "7", "--secret-env",
              "HOOK_SECRET_A")  # fmt: skip
    assert "added webhook partner" in out and "competitions 7" in out
    out = cli(services, keys, "add", "bad", receiver.url, "--events", "goal",
              "--secret-env", "HOOK_SECRET_A", ok=False)  # fmt: skip
    assert "unknown event type(s) goal" in out
    out = cli(services, keys, "list")
    assert "partner" in out and "enabled" in out and "competitions=7" in out
    assert "secret=$HOOK_SECRET_A (set in this shell)" in out

    out = cli(services, keys, "test", "partner")
    assert "delivered test message msg_" in out
    (hit,) = receiver.verified()
    assert hit.headers["webhook-id"] in out
    assert b'"type":"webhook:test"' in hit.body

    cli(services, keys, "disable", "partner")
    assert "disabled (disabled by an operator)" in cli(services, keys, "list")
    assert "enable partner" in cli(services, keys, "test", "partner", ok=False)
    cli(services, keys, "enable", "partner")
    assert "partner              enabled" in cli(services, keys, "list")
    assert "delivered" in cli(services, keys, "deliveries", "partner")

    out = cli(services, keys, "remove", "partner")
    assert "removed webhook partner and its 1 deliveries" in out
    assert "no webhooks configured" in cli(services, keys, "list")
    assert "not found" in cli(services, keys, "remove", "partner", ok=False)


async def test_a_dead_lettered_delivery_is_listed_as_failed_and_redelivered_with_its_id(
    pool: Pool, conn: Conn, factory: Factory, services: Services, keys: Keys,
    receivers: Callable[..., Receiver], worker: Callable[..., subprocess.Popen[bytes]],
) -> None:  # fmt: skip
    receiver = receivers(SECRET_A)
    receiver.answer = lambda hit: 500
    match_id = await live_match(factory)
    endpoint = await add(conn, "broken", receiver.url, events=("score:update",))
    worker(LIVESCORE_WEBHOOK_ATTEMPTS="2", LIVESCORE_WEBHOOK_BACKOFF="0.2")
    await score(conn, match_id, 1, 0)
    (change,) = [c for c in await changes_since(conn, match_id, 0) if c.type == "score:update"]
    wanted = message_id(endpoint.id, match_id, change.seq)

    async def dead() -> store.Delivery | None:
        rows = await deliveries(conn, "broken")
        return rows[0] if rows and rows[0].state == "dead" else None

    failed = await eventually(dead, 30, "the delivery to be dead-lettered after 2 attempts")
    assert failed.attempts == 2 and failed.last_status == 500
    assert [h.headers["webhook-id"] for h in receiver.verified()] == [wanted, wanted]
    out = cli(services, keys, "deliveries", "broken", "--failed")
    assert f"{failed.id:>8} score:update" in out and "FAILED" in out and "500" in out

    receiver.answer = lambda hit: 204
    out = cli(services, keys, "redeliver", str(failed.id))
    assert f"delivery {failed.id} ({wanted}) to broken queued again" in out
    await eventually(lambda: receiver.delivered_ids() == [wanted], 30, "the redelivery")
    assert receiver.verified()[-1].body == change_codec.encode(change)
    assert "no failed deliveries" in cli(services, keys, "deliveries", "broken", "--failed")
    out = cli(services, keys, "redeliver", str(failed.id + 1000), ok=False)
    assert "not found" in out
