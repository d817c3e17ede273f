"""FeedClient against a provider misbehaving on a real socket: a response body
is capped (default 10 MiB, per feed), a whole request has an overall deadline
(default 20 s) besides the per-read timeout."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path
from typing import Any, ClassVar

import pytest

from livescore.feeds import DEFAULT_MAX_BODY_BYTES, FeedConfig
from livescore.model import MatchObservation
from providers.base import Adapter, RawResponse, RequestSpec
from providers.errors import DeadlineExceeded, ProviderUnavailable, ResponseTooLarge
from providers.http import DEFAULT_DEADLINE_S, DEFAULT_TIMEOUT, FeedClient, RetryPolicy
from tests.misbehaving import MisbehavingProvider, drip, huge, reply

MB = 1_000_000


class PlainAdapter(Adapter):
    kind: ClassVar[str] = "test-feed"
    default_base_url: ClassVar[str] = "http://unused.test"

    def today_request(self, day: date) -> RequestSpec:
        return RequestSpec("today", "/v4/matches")

    def match_request(self, provider_match_id: str) -> RequestSpec:
        return RequestSpec("match", f"/v4/matches/{provider_match_id}", (), provider_match_id)

    def _parse(self, payload: Any, response: RawResponse) -> list[MatchObservation]:
        return []


SPEC = RequestSpec("today", "/v4/matches")


def client_for(base_url: str, **options: Any) -> FeedClient:
    max_body = options.pop("max_body_bytes", None)
    feed = FeedConfig(name="bad", kind="test-feed", base_url=base_url, max_body_bytes=max_body)
    return FeedClient(PlainAdapter(feed), **options)


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def test_defaults_are_a_10_mib_cap_and_a_20_s_deadline_besides_the_read_timeout() -> None:
    assert DEFAULT_MAX_BODY_BYTES == 10 * 1024 * 1024
    assert DEFAULT_DEADLINE_S == 20.0
    assert DEFAULT_TIMEOUT.read is not None and DEFAULT_TIMEOUT.read < DEFAULT_DEADLINE_S
    client = client_for("http://127.0.0.1:9")
    assert (client.max_body_bytes, client.deadline_s) == (DEFAULT_MAX_BODY_BYTES, 20.0)


@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "until-close"])
async def test_a_50_mb_body_is_refused_with_a_clear_error_and_rss_stays_flat(
    declare_length: bool,
) -> None:
    async with MisbehavingProvider() as server:
        server.routes["big"] = huge(50 * MB, declare_length=declare_length)
        async with client_for(f"{server.url}/big") as client:
            before = rss_bytes()
            with pytest.raises(ResponseTooLarge) as info:
                await client.send(SPEC)
            first = rss_bytes() - before
            for _ in range(5):  # every poll refuses it again; nothing accumulates
                with pytest.raises(ResponseTooLarge) as info:
                    await client.send(SPEC)
            more = rss_bytes() - before - first
    message = str(info.value)
    assert f"over the {DEFAULT_MAX_BODY_BYTES}-byte cap" in message
    assert "--max-body" in message
    assert isinstance(info.value, ProviderUnavailable)  # callers that skip a down feed skip it
    assert info.value.size == (50 * MB if declare_length else None)
    assert server.requests["big"] == 6  # a refused body is not retried
    # reading it whole would cost 50 MB of bytes plus its decoded text; the cap
    # keeps at most 10 MiB alive at a time, and five more refusals add nothing
    assert first < 25 * MB, f"RSS grew by {first / MB:.1f} MB on the first refusal"
    assert more < 5 * MB, f"RSS grew by {more / MB:.1f} MB over five more refusals"


async def test_a_feed_sets_its_own_body_cap() -> None:
    async with MisbehavingProvider() as server:
        server.routes["small"] = huge(4096, declare_length=False)
        server.routes["ok"] = reply(200, '{"matches": []}')
        async with client_for(f"{server.url}/small", max_body_bytes=2048) as client:
            with pytest.raises(ResponseTooLarge, match="over the 2048-byte cap"):
                await client.send(SPEC)
        async with client_for(f"{server.url}/ok", max_body_bytes=2048) as client:
            assert (await client.send(SPEC)).body == '{"matches": []}'
        async with client_for(f"{server.url}/small", max_body_bytes=8192) as client:
            assert len((await client.send(SPEC)).body) == 4096


async def test_a_drip_fed_body_is_cut_at_the_deadline() -> None:
    # a byte every 0.2 s never trips the 15 s read timeout; only the deadline ends it
    async with MisbehavingProvider() as server:
        server.routes["drip"] = drip(every_s=0.2)
        policy = RetryPolicy(attempts=4, backoff_initial_s=0.01, jitter_s=0)
        async with client_for(f"{server.url}/drip", deadline_s=1.5, retry=policy) as client:
            started = time.monotonic()
            with pytest.raises(DeadlineExceeded) as info:
                await client.send(SPEC)
            took = time.monotonic() - started
    assert "within the 1.5s deadline" in str(info.value)
    assert "drip-feeding" in str(info.value)
    # not before the deadline; after it, only by the load (a drip that the deadline
    # did not cut goes on for hours: 100 kB at a byte every 0.2 s)
    assert 1.5 <= took < 10.0, took
    assert server.requests["drip"] == 1


async def test_the_deadline_covers_retries_and_their_backoff() -> None:
    # each attempt fails at once (503), the backoff alone would take 3 x 10 s
    async with MisbehavingProvider() as server:
        server.routes["down"] = reply(503, "{}")
        policy = RetryPolicy(attempts=4, backoff_initial_s=10.0, backoff_max_s=10.0, jitter_s=0)
        async with client_for(f"{server.url}/down", deadline_s=1.0, retry=policy) as client:
            started = time.monotonic()
            with pytest.raises(DeadlineExceeded):
                await client.send(SPEC)
            # the first backoff alone is 10 s: a deadline that did not cover the
            # backoff could not have ended it sooner, however loaded the machine
            assert time.monotonic() - started < 10.0
