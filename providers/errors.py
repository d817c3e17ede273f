"""Errors raised by provider adapters.

ProviderError                 base; carries the provider (feed kind) name
├── PayloadError              a response is malformed; names the field path
├── ErrorResponse             a (recorded) response is an HTTP error: nothing to parse
├── CredentialsRejected       401/403: fix the secret, retrying will not help
├── MissingSecret             the feed names an env var that is not set
├── ProviderUnavailable       connect errors / 5xx after every retry
│   ├── ResponseTooLarge      the body is larger than the feed's size cap
│   └── DeadlineExceeded      no complete response within the overall deadline
└── BudgetExhausted           the shared per-provider request budget is spent
    └── Throttled             the provider itself said wait (429, Retry-After,
                              X-RequestCounter-Reset, a rate-limit error body)
"""

from __future__ import annotations

from livescore.errors import LiveScoreError


class ProviderError(LiveScoreError):
    """Base of every error an adapter raises on purpose."""

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider


class PayloadError(ProviderError):
    """The provider sent something we cannot read. ``path`` is a field path
    such as ``matches[3].score.fullTime.home``."""

    def __init__(self, provider: str, path: str, problem: str) -> None:
        super().__init__(provider, f"malformed payload at {path}: {problem}")
        self.path = path
        self.problem = problem


def describe_status(status: int) -> str:
    """``429`` -> ``"HTTP 429 (rate limited)"``: what an HTTP status means for a feed."""
    named = {
        401: "credentials rejected",
        403: "credentials rejected",
        404: "not found",
        425: "too early",
        429: "rate limited",
    }
    if status in named:
        meaning = named[status]
    elif 500 <= status < 600:
        meaning = "provider error"
    elif 300 <= status < 400:
        meaning = "redirect"
    elif 400 <= status < 500:
        meaning = "request refused"
    else:
        meaning = "unexpected status"
    return f"HTTP {status} ({meaning})"


class ErrorResponse(ProviderError):
    """A response that is an HTTP error (a recorded 429 or 500, say) reached a
    parser: it is reported as what it is, never as a malformed payload."""

    def __init__(self, provider: str, status: int, url: str) -> None:
        super().__init__(
            provider,
            f"recorded response was {describe_status(status)} from {url}; "
            "it holds no matches, skipped",
        )
        self.status = status
        self.url = url


class CredentialsRejected(ProviderError):
    """The provider answered 401/403."""

    def __init__(self, provider: str, status: int, secret_env: str | None) -> None:
        hint = f"check the secret in ${secret_env}" if secret_env else "check the feed's secret"
        super().__init__(provider, f"credentials rejected (HTTP {status}); {hint}; not retrying")
        self.status = status


class MissingSecret(ProviderError):
    """The feed needs a secret from an environment variable that is unset."""

    def __init__(self, provider: str, secret_env: str) -> None:
        super().__init__(
            provider, f"secret environment variable {secret_env} is not set; export it and retry"
        )
        self.secret_env = secret_env


class ProviderUnavailable(ProviderError):
    """The provider kept failing (connect errors, 5xx, 429) through every retry."""


class ResponseTooLarge(ProviderUnavailable):
    """The response body exceeds the feed's size cap; reading stopped at the cap."""

    def __init__(self, provider: str, url: str, limit: int, size: int | None = None) -> None:
        seen = f"declares {size} bytes" if size is not None else "kept coming"
        super().__init__(
            provider,
            f"response from {url} {seen}, over the {limit}-byte cap; refused unread. "
            "If the feed really sends that much, raise its cap (providers add --max-body)",
        )
        self.url = url
        self.limit = limit
        self.size = size


class DeadlineExceeded(ProviderUnavailable):
    """No complete response within the overall per-request deadline (a slow or
    drip-fed body: the read timeout alone restarts with every byte)."""

    def __init__(self, provider: str, url: str, deadline_s: float) -> None:
        super().__init__(
            provider,
            f"no complete response from {url} within the {deadline_s:g}s deadline; "
            "the provider is too slow or drip-feeding its body, the request was cut",
        )
        self.url = url
        self.deadline_s = deadline_s


class BudgetExhausted(ProviderError):
    """The shared request budget for this provider is spent for now."""

    def __init__(self, provider: str, retry_after_s: float, message: str | None = None) -> None:
        super().__init__(
            provider,
            message or f"request budget exhausted; next request allowed in {retry_after_s:.1f}s",
        )
        self.retry_after_s = retry_after_s


class Throttled(BudgetExhausted):
    """The provider said to wait (HTTP 429, ``Retry-After``, football-data's
    ``X-RequestCounter-Reset``, or a rate-limit error in the body). Never slept
    on: the worker pauses the feed for ``retry_after_s`` and skips its polls."""

    def __init__(self, provider: str, retry_after_s: float, *, status: int | None = None) -> None:
        what = f"HTTP {status}" if status is not None else "rate-limit error"
        super().__init__(
            provider,
            retry_after_s,
            f"rate limited by the provider ({what}); the feed pauses for {retry_after_s:.1f}s, "
            "nothing to do unless it keeps happening (then lower --budget)",
        )
        self.status = status
