"""The pure rules of webhooks (``livescore.webhooks``): signing as the Standard
Webhooks package verifies it, the retry schedule, and which changes an
endpoint wants."""

from __future__ import annotations

import base64
import itertools
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from livescore.errors import ConfigError
from livescore.webhooks import (
    EVENT_TYPES,
    MAX_RETRY_AFTER_S,
    Endpoint,
    RetrySchedule,
    WebhookSecretError,
    check_endpoint,
    headers,
    message_id,
    parse_events,
    parse_ids,
    retry_after_s,
    secret_key,
    wants,
)

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def endpoint(**changes: object) -> Endpoint:
    base: dict[str, object] = {
        "name": "partner",
        "url": "https://partner.example/hooks",
        "events": ("score:update", "match:status"),
        "secret_env": "PARTNER_SECRET",
        "id": 3,
    }
    base.update(changes)
    return Endpoint(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "body", [b"{}", b'{"type":"score:update","matchId":1,"seq":2}', '{"é":"ü"}'.encode()]
)
def test_signed_headers_verify_with_the_standard_webhooks_package(body: bytes) -> None:
    key = secret_key(SECRET, "PARTNER_SECRET")
    now = int(time.time())  # the package refuses timestamps over 5 minutes off
    sent = dict(headers(key, "msg_3_1_2", now, body))
    assert sent["webhook-id"] == "msg_3_1_2"
    assert sent["webhook-timestamp"] == str(now)
    assert sent["webhook-signature"].startswith("v1,")
    Webhook(SECRET).verify(body, sent)


def test_a_signature_over_another_body_or_id_does_not_verify() -> None:
    key = secret_key(SECRET, "PARTNER_SECRET")
    now = int(time.time())  # the package refuses timestamps over 5 minutes off
    sent = dict(headers(key, "msg_3_1_2", now, b'{"a":1}'))
    verifier = Webhook(SECRET)
    with pytest.raises(WebhookVerificationError):
        verifier.verify(b'{"a":2}', sent)
    with pytest.raises(WebhookVerificationError):
        verifier.verify(b'{"a":1}', {**sent, "webhook-id": "msg_3_1_3"})


@pytest.mark.parametrize(
    "secret",
    [None, "", "not-whsec", "whsec_!!!notbase64", "whsec_" + base64.b64encode(b"x").decode()],
)
def test_an_unset_or_malformed_secret_is_refused_naming_the_variable(secret: str | None) -> None:
    with pytest.raises(WebhookSecretError) as info:
        secret_key(secret, "PARTNER_SECRET")
    assert "$PARTNER_SECRET" in str(info.value)


def test_the_message_id_is_stable_per_change_and_endpoint() -> None:
    assert message_id(3, 10, 7) == message_id(3, 10, 7)
    assert len({message_id(3, 10, 7), message_id(4, 10, 7), message_id(3, 11, 7),
                message_id(3, 10, 8)}) == 4  # fmt: skip


def test_the_default_schedule_is_8_attempts_over_about_a_day() -> None:
    schedule = RetrySchedule()
    assert len(schedule.offsets()) == 8
    gaps = schedule.gaps()
    assert gaps[0] == 10
    assert all(later >= earlier for earlier, later in itertools.pairwise(gaps))
    assert 18 * 3600 < schedule.offsets()[-1] < 30 * 3600
    assert max(gaps) <= 10 * 3600


def test_each_failure_moves_to_the_next_point_then_dead_letters() -> None:
    schedule = RetrySchedule(attempts=4, first_gap_s=1)  # offsets 0, 1, 6, 31
    assert schedule.offsets() == [0, 1, 6, 31]
    assert schedule.next_after(0.1, 1) == 1
    assert schedule.next_after(1.2, 2) == 6
    assert schedule.next_after(6.3, 3) == 31
    assert schedule.next_after(31.5, 4) is None


def test_a_late_delivery_skips_the_points_behind_it_but_is_retried_once() -> None:
    schedule = RetrySchedule(attempts=4, first_gap_s=1)
    # first tried 10 s after it was created (it waited behind an earlier one)
    assert schedule.next_after(10.0, 1) == 31
    # first tried after its last point: one more try at once (31 is behind it), then dead
    assert schedule.next_after(40.0, 1) == 31
    assert schedule.next_after(40.1, 2) is None


def test_a_retry_after_moves_the_next_attempt_later_never_earlier_nor_past_dead() -> None:
    schedule = RetrySchedule(attempts=4, first_gap_s=1)  # offsets 0, 1, 6, 31
    assert schedule.next_after(0.1, 1, not_before_s=120.0) == 120.0
    assert schedule.next_after(0.1, 1, not_before_s=0.5) == 1  # sooner than the schedule: ignored
    assert schedule.next_after(40.0, 1, not_before_s=100.0) == 100.0  # the late one's last try
    assert schedule.next_after(31.5, 4, not_before_s=100.0) is None  # dead stays dead


NOW = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "wait"),
    [
        (None, None),
        ("120", 120.0),
        (" 0 ", 0.0),
        ("Sun, 29 Nov 2026 12:05:00 GMT", 300.0),
        ("Sun, 29 Nov 2026 11:00:00 GMT", 0.0),  # a date in the past: at once
        ("999999999", MAX_RETRY_AFTER_S),  # capped
        ("-5", None),
        ("soon", None),
        ("1.5", None),  # delay-seconds is a whole number
    ],
)
def test_retry_after_reads_seconds_or_an_http_date_and_ignores_garbage(
    header: str | None, wait: float | None
) -> None:
    assert retry_after_s(header, NOW) == wait


def test_one_attempt_means_no_retry() -> None:
    assert RetrySchedule(attempts=1).next_after(0.0, 1) is None


def test_an_endpoint_wants_its_event_types_and_scope_only() -> None:
    every = endpoint()
    assert wants(every, "score:update", 1, None)
    assert not wants(every, "commentary:new", 1, None)
    by_match = endpoint(match_ids=(5, 6))
    assert wants(by_match, "match:status", 6, 2) and not wants(by_match, "match:status", 7, 2)
    by_competition = endpoint(competition_ids=(2,))
    assert wants(by_competition, "score:update", 9, 2)
    assert not wants(by_competition, "score:update", 9, 3)
    assert not wants(by_competition, "score:update", 9, None)
    assert not wants(endpoint(enabled=False), "score:update", 1, None)


def test_events_parse_from_a_comma_list_or_all() -> None:
    assert parse_events("score:update, match:status,score:update") == (
        "score:update",
        "match:status",
    )
    assert parse_events("all") == EVENT_TYPES
    assert parse_ids("12, 15,12", "--matches") == (12, 15)
    with pytest.raises(ConfigError, match="--matches"):
        parse_ids("12,x", "--matches")


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"name": "Bad Name"}, "webhook name"),
        ({"url": "ftp://partner.example/x"}, "http:// or https://"),
        ({"url": "https:///nohost"}, "http:// or https://"),
        ({"events": ()}, "--events"),
        ({"events": ("score:update", "goal")}, "unknown event type(s) goal"),
        ({"match_ids": (1,), "competition_ids": (2,)}, "not both"),
        ({"secret_env": "lower"}, "--secret-env"),
    ],
)
def test_an_endpoint_that_cannot_work_is_refused_saying_what_to_fix(
    changes: dict[str, object], says: str
) -> None:
    with pytest.raises(ConfigError) as info:
        check_endpoint(endpoint(**changes))
    assert says in str(info.value)
