"""Signed webhooks, the pure part: endpoints as plain data, which changes an
endpoint wants, Standard Webhooks signing, and the retry schedule.

Lives in the kernel so the store can return ``Endpoint`` values and the
pipeline and the CLI can share the rules; nothing here does I/O.

Signing follows the Standard Webhooks specification (standardwebhooks.com):
a secret is ``whsec_`` + base64 of the key bytes; each request carries
``webhook-id`` (stable per change and endpoint, so a receiver can drop a
duplicate), ``webhook-timestamp`` (Unix seconds of the attempt) and
``webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>``.

The retry schedule counts from when a delivery was created (or redelivered):
attempt ``k`` is due ``offset(k)`` after it, each gap ``BACKOFF_FACTOR`` times
the one before (capped at ``MAX_GAP_S``); a delivery that fails after its
last point is dead-lettered. A delivery held behind an earlier one of its
match takes the next point of its own schedule when its turn comes (a
first failure is always retried once), so a backlog built during a long
outage is settled in two attempts each instead of a whole schedule each.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from livescore.errors import ConfigError

#: The change types a webhook endpoint may ask for (the change log's types).
EVENT_TYPES: tuple[str, ...] = (
    "score:update",
    "match:status",
    "match:update",
    "commentary:new",
    "commentary:update",
)
#: The type of the message ``livescore webhooks test`` sends.
TEST_TYPE = "webhook:test"

#: Each gap of the retry schedule is this many times the one before ...
BACKOFF_FACTOR = 5.0
#: ... but never longer than this (10 hours).
MAX_GAP_S = 36_000.0

_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")
_ENV = re.compile(r"[A-Z_][A-Z0-9_]*")
SECRET_PREFIX = "whsec_"


class WebhookSecretError(ConfigError):
    """An endpoint's secret is unset or not in the ``whsec_<base64>`` form."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One webhook endpoint (a row of ``webhook_endpoints``, as plain data).

    ``match_ids`` / ``competition_ids``: empty means every match; at most one
    of them is set. ``secret_env`` names the environment variable (of the
    worker process) holding the ``whsec_`` secret; the secret is never stored.
    """

    name: str
    url: str
    events: tuple[str, ...]
    secret_env: str
    match_ids: tuple[int, ...] = ()
    competition_ids: tuple[int, ...] = ()
    enabled: bool = True
    id: int = 0
    disabled_reason: str | None = None


def check_endpoint(endpoint: Endpoint) -> None:
    """Refuse (``ConfigError``, naming the option to fix) an endpoint that cannot work."""
    if not _NAME.fullmatch(endpoint.name):
        raise ConfigError(
            f"webhook name {endpoint.name!r}: use 1-63 lower-case letters, digits and _.- "
            "(starting with a letter or digit)"
        )
    parts = urlsplit(endpoint.url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"webhook URL {endpoint.url!r} is not an http:// or https:// URL with a host; "
            "give one like https://partner.example/hooks/livescore"
        )
    if len(endpoint.url) > 2000:
        raise ConfigError("webhook URL is longer than 2000 characters; give a shorter one")
    if not endpoint.events:
        raise ConfigError(f"give --events: a comma list of {', '.join(EVENT_TYPES)} (or all)")
    unknown = [e for e in endpoint.events if e not in EVENT_TYPES]
    if unknown:
        raise ConfigError(
            f"unknown event type(s) {', '.join(unknown)}; choose from {', '.join(EVENT_TYPES)}"
        )
    if endpoint.match_ids and endpoint.competition_ids:
        raise ConfigError("give --matches or --competitions, not both")
    if not _ENV.fullmatch(endpoint.secret_env):
        raise ConfigError(
            f"--secret-env {endpoint.secret_env!r} is not an environment variable name "
            "(upper-case letters, digits and _), e.g. PARTNER_WEBHOOK_SECRET"
        )


def parse_events(text: str) -> tuple[str, ...]:
    """``score:update,match:status`` (or ``all``/``*``) -> the event types, in order."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if items in (["all"], ["*"]):
        return EVENT_TYPES
    return tuple(dict.fromkeys(items))


def parse_ids(text: str, what: str) -> tuple[int, ...]:
    """``"12,15"`` -> (12, 15); ``ConfigError`` naming ``what`` for anything else."""
    ids: list[int] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if not item.isdigit() or int(item) < 1:
            raise ConfigError(f"{what}: {item!r} is not an id; give a comma list like 12,15")
        ids.append(int(item))
    return tuple(dict.fromkeys(ids))


def wants(endpoint: Endpoint, change_type: str, match_id: int, competition_id: int | None) -> bool:
    """Whether ``endpoint`` gets a delivery for this change."""
    if not endpoint.enabled or change_type not in endpoint.events:
        return False
    if endpoint.match_ids:
        return match_id in endpoint.match_ids
    if endpoint.competition_ids:
        return competition_id is not None and competition_id in endpoint.competition_ids
    return True


def message_id(endpoint_id: int, match_id: int, seq: int) -> str:
    """``webhook-id`` of a change's delivery: the same on every attempt and
    redelivery, different per endpoint."""
    return f"msg_{endpoint_id}_{match_id}_{seq}"


# -- signing ----------------------------------------------------------------------------


def secret_key(secret: str | None, env: str) -> bytes:
    """The key bytes of a ``whsec_<base64>`` secret read from variable ``env``."""
    if not secret:
        raise WebhookSecretError(
            f"${env} is not set in the worker's environment; set it to the endpoint's "
            "whsec_... secret and restart `livescore worker`"
        )
    raw = secret.strip().removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not secret.strip().startswith(SECRET_PREFIX) or len(key) < 16:
        raise WebhookSecretError(
            f"${env} is not a whsec_<base64> secret of at least 16 bytes; make one with "
            "python -c \"import base64,secrets;print('whsec_'+base64.b64encode("
            'secrets.token_bytes(32)).decode())"'
        )
    return key


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,<base64 HMAC-SHA256 of id.timestamp.body>``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(key: bytes, msg_id: str, timestamp: int, body: bytes) -> Mapping[str, str]:
    """Every header of one delivery attempt."""
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(key, msg_id, timestamp, body),
    }


# -- the retry schedule -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """``attempts`` tries; the first retry ``first_gap_s`` after the first try."""

    attempts: int = 8
    first_gap_s: float = 10.0

    def gaps(self) -> list[float]:
        """The waits between consecutive attempts (``attempts - 1`` of them)."""
        return [
            min(self.first_gap_s * BACKOFF_FACTOR**k, MAX_GAP_S) for k in range(self.attempts - 1)
        ]

    def offsets(self) -> list[float]:
        """When each attempt is due, in seconds after the delivery was scheduled
        (the first at 0)."""
        out = [0.0]
        for gap in self.gaps():
            out.append(out[-1] + gap)
        return out

    def next_after(
        self, age_s: float, attempts_made: int, not_before_s: float | None = None
    ) -> float | None:
        """After a failed attempt (the ``attempts_made``-th) that began ``age_s``
        seconds into the schedule, the offset of the next attempt (points the
        attempt began after are skipped, but a first failure is always retried
        once); None: dead-letter. ``not_before_s`` (an offset: the receiver's
        ``Retry-After``) moves the next attempt later, never earlier, and never
        revives a delivery the schedule dead-letters."""
        if attempts_made >= self.attempts:
            return None
        offsets = self.offsets()
        later = max(not_before_s or 0.0, 0.0)
        for offset in offsets[1:]:
            if offset > age_s:
                return max(offset, later)
        # every point is behind it (it began late: held behind an earlier delivery,
        # or a busy worker): one more try at once, never a first failure dead-lettered
        return max(offsets[-1], later) if attempts_made == 1 else None

    def describe(self) -> str:
        """e.g. ``8 attempts over 20.9 h: 10s, 50s, 4m10s, ...`` for README and the CLI."""
        gaps = ", ".join(_short(g) for g in self.gaps())
        return f"{self.attempts} attempts over {_short(self.offsets()[-1])}: gaps {gaps}"


#: A receiver's ``Retry-After`` is honoured up to this long (a longer one waits this long).
MAX_RETRY_AFTER_S = MAX_GAP_S


def retry_after_s(value: str | None, now: datetime) -> float | None:
    """The wait a ``Retry-After`` header asks for (RFC 9110 10.2.3: delay-seconds
    or an HTTP-date), in seconds from ``now`` (timezone-aware), capped at
    ``MAX_RETRY_AFTER_S``; None when the header is absent or unreadable (the
    schedule alone then decides)."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), MAX_RETRY_AFTER_S)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT
        return None
    return min(max((when - now).total_seconds(), 0.0), MAX_RETRY_AFTER_S)


def _short(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:g}s"
    if seconds < 3600:
        minutes, secs = divmod(round(seconds), 60)
        return f"{minutes}m{secs:02d}s" if secs else f"{minutes}m"
    return f"{seconds / 3600:.1f}h"
