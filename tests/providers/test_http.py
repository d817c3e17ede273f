"""FeedClient: timeouts, retries, Retry-After, credentials, budgets, change detection."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from typing import Any, ClassVar

import httpx
import pytest
import respx

from livescore.model import MatchObservation
from providers.base import Adapter, FeedConfig, RawResponse, RequestSpec
from providers.errors import (
    BudgetExhausted,
    CredentialsRejected,
    MissingSecret,
    ProviderError,
    ProviderUnavailable,
    Throttled,
)
from providers.http import (
    DEFAULT_TIMEOUT,
    FeedClient,
    MemoryBudget,
    ProviderHTTPError,
    RetryPolicy,
    parse_retry_after,
    request_key,
)
from providers.recording import encode_response
from tests.waiting import FakeClock, FakeSleep

BASE = "https://api.example.test"
NOW = datetime(2022, 9, 4, 13, 0, tzinfo=UTC)
SECRET = "s3cr3t-token-value"


class TokenAdapter(Adapter):
    """A minimal adapter: the secret goes in a header, like football-data."""

    kind: ClassVar[str] = "test-feed"
    default_base_url: ClassVar[str] = BASE
    auth_header: ClassVar[str | None] = "X-Auth-Token"

    def today_request(self, day: date) -> RequestSpec:
        return RequestSpec("today", "/v4/matches", (("date", day.isoformat()),))

    def match_request(self, provider_match_id: str) -> RequestSpec:
        return RequestSpec("match", f"/v4/matches/{provider_match_id}", (), provider_match_id)

    def _parse(self, payload: Any, response: RawResponse) -> list[MatchObservation]:
        return []


class ParamKeyAdapter(TokenAdapter):
    """The secret goes in a query parameter."""

    auth_header: ClassVar[str | None] = None

    def auth(self, secret: str | None) -> tuple[dict[str, str], dict[str, str]]:
        return {}, ({"apikey": secret} if secret else {})


class PathKeyAdapter(TokenAdapter):
    """The secret goes in the URL path, like TheSportsDB v1."""

    auth_header: ClassVar[str | None] = None

    def url_path(self, spec: RequestSpec, secret: str | None) -> str:
        return f"/api/v1/json/{secret}{spec.path}"


SPEC = RequestSpec("today", "/v4/matches", (("date", "2022-09-04"),))


def make_client(
    adapter: Adapter | None = None,
    *,
    sleep: FakeSleep | None = None,
    policy: RetryPolicy | None = None,
    environ: dict[str, str] | None = None,
    **kwargs: Any,
) -> FeedClient:
    adapter = adapter or TokenAdapter(FeedConfig(name="fd", kind="test-feed", secret_env="TOK"))
    return FeedClient(
        adapter,
        sleep=sleep or FakeSleep(),
        retry=policy or RetryPolicy(attempts=4, backoff_initial_s=1.0, jitter_s=0.0),
        clock=lambda: NOW,
        environ={"TOK": SECRET} if environ is None else environ,
        **kwargs,
    )


# -- timeouts and transport errors --------------------------------------------------------


async def test_client_has_an_explicit_timeout() -> None:
    async with make_client() as client:
        assert client.timeout is DEFAULT_TIMEOUT
        assert client._client.timeout == DEFAULT_TIMEOUT
        assert DEFAULT_TIMEOUT.connect is not None and DEFAULT_TIMEOUT.read is not None


async def test_read_timeouts_are_retried_then_provider_unavailable(
    respx_mock: respx.MockRouter,
) -> None:
    route = respx_mock.get(f"{BASE}/v4/matches").mock(side_effect=httpx.ReadTimeout("slow"))
    sleep = FakeSleep()
    async with make_client(sleep=sleep, policy=RetryPolicy(attempts=3, jitter_s=0)) as client:
        with pytest.raises(ProviderUnavailable, match="after 3 attempts") as info:
            await client.send(SPEC)
    assert route.call_count == 3
    assert len(sleep.waits) == 2
    assert isinstance(info.value.__cause__, Exception)


async def test_connect_error_is_retried_with_backoff(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get(f"{BASE}/v4/matches").mock(
        side_effect=[httpx.ConnectError("refused"), httpx.Response(200, text="{}")]
    )
    sleep = FakeSleep()
    async with make_client(sleep=sleep) as client:
        response = await client.send(SPEC)
    assert response.status == 200
    assert route.call_count == 2
    assert sleep.waits == [1.0]


async def test_5xx_backoff_is_exponential(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get(f"{BASE}/v4/matches").mock(
        side_effect=[httpx.Response(500), httpx.Response(502), httpx.Response(200, text="[]")]
    )
    sleep = FakeSleep()
    async with make_client(sleep=sleep) as client:
        assert (await client.send(SPEC)).body == "[]"
    assert route.call_count == 3
    assert sleep.waits == [1.0, 2.0]


async def test_backoff_has_jitter_within_bounds(respx_mock: respx.MockRouter) -> None:
    respx_mock.get(f"{BASE}/v4/matches").mock(
        side_effect=[httpx.Response(503), httpx.Response(200)]
    )
    sleep = FakeSleep()
    policy = RetryPolicy(attempts=2, backoff_initial_s=1.0, jitter_s=0.5)
    async with make_client(sleep=sleep, policy=policy) as client:
        await client.send(SPEC)
    assert 1.0 <= sleep.waits[0] <= 1.5


async def test_5xx_on_every_attempt_gives_provider_unavailable(
    respx_mock: respx.MockRouter,
) -> None:
    route = respx_mock.get(f"{BASE}/v4/matches").mock(return_value=httpx.Response(503))
    async with make_client() as client:
        with pytest.raises(ProviderUnavailable, match="HTTP 503"):
            await client.send(SPEC)
    assert route.call_count == 4


# -- 429 and provider-requested waits: never slept on, raised as Throttled ------------------


async def test_429_retry_after_seconds_raises_throttled_without_sleeping(
    respx_mock: respx.MockRouter,
) -> None:
    route = respx_mock.get(f"{BASE}/v4/matches").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200)]
    )
    sleep = FakeSleep()
    async with make_client(sleep=sleep) as client:
        with pytest.raises(Throttled, match=r"HTTP 429.*pauses for 7\.0s") as info:
            await client.send(SPEC)
    assert info.value.retry_after_s == 7.0
    assert info.value.status == 429
    assert route.call_count == 1
    assert sleep.waits == []


async def test_429_retry_after_http_date_gives_the_pause(respx_mock: respx.MockRouter) -> None:
    when = format_datetime(NOW + timedelta(seconds=30), usegmt=True)
    respx_mock.get(f"{BASE}/v4/matches").mock(
        return_value=httpx.Response(429, headers={"Retry-After": when})
    )
    async with make_client() as client:
        with pytest.raises(Throttled) as info:
            await client.send(SPEC)
    assert info.value.retry_after_s == 30.0


async def test_5xx_with_retry_after_is_throttled_too_and_the_pause_is_capped(
    respx_mock: respx.MockRouter,
) -> None:
    route = respx_mock.get(f"{BASE}/v4/matches").mock(
        return_value=httpx.Response(503, headers={"Retry-After": "86400"})
    )
    sleep = FakeSleep()
    policy = RetryPolicy(attempts=2, max_pause_s=900.0, jitter_s=0)
    async with make_client(sleep=sleep, policy=policy) as client:
        with pytest.raises(Throttled) as info:
            await client.send(SPEC)
    assert (info.value.retry_after_s, info.value.status) == (900.0, 503)
    assert route.call_count == 1
    assert sleep.waits == []


async def test_429_x_requestcounter_reset_gives_the_pause(respx_mock: respx.MockRouter) -> None:
    """football-data.org says when its per-minute counter resets instead of Retry-After."""
    limited = httpx.Response(
        429,
        headers={"X-RequestCounter-Reset": "42", "X-Requests-Available-Minute": "0"},
        json={"message": "You reached your request limit.", "errorCode": 429},
    )
    route = respx_mock.get(f"{BASE}/v4/matches").mock(side_effect=[limited, httpx.Response(200)])
    async with make_client() as client:
        with pytest.raises(Throttled) as info:
            await client.send(SPEC)
    assert route.call_count == 1
    assert info.value.retry_after_s == 42.0
    assert client.stats.provider_reset_s == 42.0


async def test_429_without_hints_pauses_for_the_default(respx_mock: respx.MockRouter) -> None:
    respx_mock.get(f"{BASE}/v4/matches").mock(return_value=httpx.Response(429))
    policy = RetryPolicy(default_pause_s=45.0)
    async with make_client(policy=policy) as client:
        with pytest.raises(Throttled) as info:
            await client.send(SPEC)
    assert info.value.retry_after_s == 45.0


async def test_throttled_is_a_budget_exhaustion(respx_mock: respx.MockRouter) -> None:
    """Callers that skip on a spent budget (record, ingest) skip on a throttle too."""
    respx_mock.get(f"{BASE}/v4/matches").mock(return_value=httpx.Response(429))
    async with make_client() as client:
        with pytest.raises(BudgetExhausted):
            await client.send(SPEC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 5 ", 5.0),
        ("0", 0.0),
        ("-3", 0.0),
        ("1.5", 1.5),
        ("Sun, 04 Sep 2022 13:01:00 GMT", 60.0),
        ("Sun, 04 Sep 2022 12:00:00 GMT", 0.0),  # in the past
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


# -- credentials ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
async def test_credentials_rejected_fails_fast(respx_mock: respx.MockRouter, status: int) -> None:
    route = respx_mock.get(f"{BASE}/v4/matches").mock(
        return_value=httpx.Response(status, json={"message": "Your API token is invalid."})
    )
    sleep = FakeSleep()
    async with make_client(sleep=sleep) as client:
        with pytest.raises(CredentialsRejected) as info:
            await client.send(SPEC)
    assert route.call_count == 1
    assert sleep.waits == []
    assert info.value.status == status
    message = str(info.value)
    assert "credentials rejected" in message
    assert "$TOK" in message  # says which variable to fix
    assert SECRET not in message


async def test_missing_secret_is_reported_without_a_request(
    respx_mock: respx.MockRouter,
) -> None:
    route = respx_mock.get(f"{BASE}/v4/matches")
    async with make_client(environ={}) as client:
        with pytest.raises(MissingSecret, match="TOK is not set"):
            await client.send(SPEC)
    assert route.call_count == 0


async def test_secret_is_read_at_send_time(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get(f"{BASE}/v4/matches").mock(return_value=httpx.Response(200))
    environ: dict[str, str] = {}
    async with make_client(environ=environ) as client:
        with pytest.raises(MissingSecret):
            await client.send(SPEC)
        environ["TOK"] = "rotated-token"
        await client.send(SPEC)
    assert route.calls.last.request.headers["X-Auth-Token"] == "rotated-token"


async def test_feed_without_secret_env_sends_no_auth(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get(f"{BASE}/v4/matches").mock(return_value=httpx.Response(200))
    adapter = TokenAdapter(FeedConfig(name="open", kind="test-feed"))
    async with make_client(adapter, environ={}) as client:
        await client.send(SPEC)
    assert "X-Auth-Token" not in route.calls.last.request.headers


async def test_other_4xx_is_a_provider_error_with_status(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get(f"{BASE}/v4/matches/1").mock(
        return_value=httpx.Response(404, json={"message": "not found"})
    )
    async with make_client() as client:
        with pytest.raises(ProviderHTTPError) as info:
            await client.send(RequestSpec("match", "/v4/matches/1", (), "1"))
    assert info.value.status == 404
    assert route.call_count == 1


async def test_redirects_are_not_followed(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get(f"{BASE}/v4/matches").mock(
        return_value=httpx.Response(302, headers={"Location": "https://elsewhere.test/steal"})
    )
    async with make_client() as client:
        with pytest.raises(ProviderHTTPError, match=r"redirected to https://elsewhere\.test"):
            await client.send(SPEC)
    assert route.call_count == 1
    assert len(respx_mock.calls) == 1  # nothing was sent to the other host


# -- secrets are never recorded --------------------------------------------------------------


def _dump(response: RawResponse) -> str:
    return encode_response(response) + repr(response)


@pytest.mark.parametrize(
    ("adapter_cls", "where"),
    [(TokenAdapter, "header"), (ParamKeyAdapter, "param"), (PathKeyAdapter, "path")],
)
async def test_secret_never_appears_in_the_raw_response(
    respx_mock: respx.MockRouter, adapter_cls: type[TokenAdapter], where: str
) -> None:
    echo = httpx.Response(
        200,
        headers={
            "Set-Cookie": f"session={SECRET}",
            "X-Echo-Key": SECRET,
            "X-Requests-Available-Minute": "9",
        },
        text=f'{{"token":"{SECRET}","matches":[]}}',
    )
    route = respx_mock.route(host="api.example.test").mock(return_value=echo)
    adapter = adapter_cls(FeedConfig(name="fd", kind="test-feed", secret_env="TOK"))
    async with make_client(adapter) as client:
        response = await client.send(SPEC)
    sent = route.calls.last.request
    if where == "header":
        assert sent.headers["X-Auth-Token"] == SECRET
    elif where == "param":
        assert sent.url.params["apikey"] == SECRET
    else:
        assert SECRET in sent.url.path
    assert SECRET not in _dump(response)
    assert "set-cookie" not in response.headers
    assert response.headers["x-echo-key"] == "***"
    assert response.url == f"{BASE}/v4/matches"
    assert response.params == {"date": "2022-09-04"}
    assert response.headers["x-requests-available-minute"] == "9"


async def test_raw_response_carries_what_was_received(respx_mock: respx.MockRouter) -> None:
    body = '{"matches": [{"id": 1, "homeTeam": {"name": "Atlético"}}]}'
    respx_mock.get(f"{BASE}/v4/matches/7").mock(
        return_value=httpx.Response(
            200,
            content=body.encode(),
            headers={"Content-Type": "application/json;charset=UTF-8", "Content-Length": "999"},
        )
    )
    async with make_client() as client:
        response = await client.send(RequestSpec("match", "/v4/matches/7", (), "7"))
    assert response.body == body
    assert response.feed == "fd" and response.kind == "test-feed"
    assert response.purpose == "match" and response.provider_match_id == "7"
    assert response.fetched_at == NOW
    assert response.headers["content-type"] == "application/json;charset=UTF-8"
    assert "content-length" not in response.headers  # describes the wire, not the text


# -- base URL ----------------------------------------------------------------------------------


async def test_base_url_is_honoured(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get("http://mirror.local:8080/proxy/v4/matches").mock(
        return_value=httpx.Response(200, text="{}")
    )
    feed = FeedConfig(
        name="fd", kind="test-feed", base_url="http://mirror.local:8080/proxy/", secret_env="TOK"
    )
    async with make_client(TokenAdapter(feed)) as client:
        response = await client.send(SPEC)
    assert route.call_count == 1
    assert route.calls.last.request.url.params["date"] == "2022-09-04"
    assert response.url == "http://mirror.local:8080/proxy/v4/matches"


@pytest.mark.parametrize("base_url", ["ftp://mirror.test/v4", "file:///etc"])
async def test_a_stored_non_http_base_url_is_a_clear_provider_error(base_url: str) -> None:
    feed = FeedConfig(name="fd", kind="test-feed", base_url=base_url, secret_env="TOK")
    async with make_client(TokenAdapter(feed)) as client:
        with pytest.raises(ProviderError, match=r"give the feed an http:// or https:// --base-url"):
            await client.send(SPEC)


async def test_injected_transport_is_used() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, text="ok")

    async with make_client(transport=httpx.MockTransport(handler)) as client:
        assert (await client.send(SPEC)).body == "ok"
    assert seen == [f"{BASE}/v4/matches?date=2022-09-04"]


# -- budget ------------------------------------------------------------------------------------


async def test_budget_exhaustion_raises_without_a_request(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get(f"{BASE}/v4/matches").mock(return_value=httpx.Response(200))
    monotonic = FakeClock(1000.0)
    budget = MemoryBudget(monotonic=monotonic)
    feed = FeedConfig(name="fd", kind="test-feed", secret_env="TOK", budget_per_minute=2)
    async with make_client(TokenAdapter(feed), budget=budget) as client:
        await client.send(SPEC)
        monotonic.t += 10
        await client.send(SPEC)
        assert await client.budget_remaining() == 0
        with pytest.raises(BudgetExhausted) as info:
            await client.send(SPEC)
        assert info.value.retry_after_s == pytest.approx(50.0)
        assert route.call_count == 2
        monotonic.t += 50
        assert await client.budget_remaining() == 1
        await client.send(SPEC)
    assert route.call_count == 3


async def test_budget_is_shared_by_every_client_of_a_feed(respx_mock: respx.MockRouter) -> None:
    respx_mock.get(f"{BASE}/v4/matches").mock(return_value=httpx.Response(200))
    budget = MemoryBudget(monotonic=FakeClock(1000.0))
    feed = FeedConfig(name="fd", kind="test-feed", secret_env="TOK", budget_per_minute=3)
    async with (
        make_client(TokenAdapter(feed), budget=budget) as one,
        make_client(TokenAdapter(feed), budget=budget) as two,
    ):
        await one.send(SPEC)
        await two.send(SPEC)
        await one.send(SPEC)
        with pytest.raises(BudgetExhausted):
            await two.send(SPEC)


async def test_retries_spend_the_budget_too(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get(f"{BASE}/v4/matches").mock(return_value=httpx.Response(500))
    budget = MemoryBudget(monotonic=FakeClock(1000.0))
    feed = FeedConfig(name="fd", kind="test-feed", secret_env="TOK", budget_per_minute=2)
    async with make_client(TokenAdapter(feed), budget=budget) as client:
        with pytest.raises(BudgetExhausted):
            await client.send(SPEC)
    assert route.call_count == 2


async def test_adapter_default_budget_applies() -> None:
    class Limited(TokenAdapter):
        default_budget_per_minute: ClassVar[int | None] = 10

    feed = FeedConfig(name="fd", kind="test-feed", secret_env="TOK")
    async with make_client(Limited(feed)) as client:
        assert client.budget_per_minute == 10
        assert await client.budget_remaining() == 10
    async with make_client(Limited(FeedConfig(name="x", kind="t", budget_per_minute=3))) as c:
        assert c.budget_per_minute == 3
    async with make_client() as unlimited:
        assert await unlimited.budget_remaining() is None


# -- change detection ------------------------------------------------------------------------


async def test_unchanged_body_is_reported_unchanged(respx_mock: respx.MockRouter) -> None:
    respx_mock.get(f"{BASE}/v4/matches").mock(
        side_effect=[
            httpx.Response(200, text='{"score": 0}'),
            httpx.Response(200, text='{"score": 0}'),
            httpx.Response(200, text='{"score": 1}'),
            httpx.Response(200, text='{"score": 1}'),
        ]
    )
    async with make_client() as client:
        first = await client.poll(SPEC)
        second = await client.poll(SPEC)
        third = await client.poll(SPEC)
        await client.forget(SPEC)
        fourth = await client.poll(SPEC)
    assert first.changed and not second.changed and third.changed
    assert fourth.changed  # forgotten: parse again
    assert first.body_hash == hashlib.sha256(b'{"score": 0}').hexdigest()
    assert second.body_hash == first.body_hash != third.body_hash


async def test_change_detection_is_per_request(respx_mock: respx.MockRouter) -> None:
    respx_mock.get(f"{BASE}/v4/matches").mock(return_value=httpx.Response(200, text="same"))
    other = RequestSpec("today", "/v4/matches", (("date", "2022-09-05"),))
    async with make_client() as client:
        assert (await client.poll(SPEC)).changed
        assert (await client.poll(other)).changed
        assert not (await client.poll(SPEC)).changed
    assert request_key(SPEC) != request_key(other)


# -- stats for `providers check` ---------------------------------------------------------------


async def test_stats_report_latency_and_provider_budget(respx_mock: respx.MockRouter) -> None:
    respx_mock.get(f"{BASE}/v4/matches").mock(
        return_value=httpx.Response(
            200,
            headers={"X-Requests-Available-Minute": "9", "X-RequestCounter-Reset": "60"},
            text="{}",
        )
    )
    async with make_client() as client:
        assert client.stats.requests == 0
        await client.send(SPEC)
        stats = client.stats
    assert stats.requests == 1
    assert stats.last_status == 200
    assert stats.last_latency_s is not None and stats.last_latency_s >= 0
    assert stats.last_fetched_at == NOW
    assert stats.provider_remaining == 9
    assert stats.provider_reset_s == 60.0
