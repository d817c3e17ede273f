"""Errors raised by provider adapters.

ProviderError                 base; carries the provider (feed kind) name
├── PayloadError              a response is malformed; names the field path
├── CredentialsRejected       401/403: fix the secret, retrying will not help
├── MissingSecret             the feed names an env var that is not set
├── ProviderUnavailable       connect errors / 5xx / 429 after every retry
└── BudgetExhausted           the shared per-provider request budget is spent
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


class BudgetExhausted(ProviderError):
    """The shared request budget for this provider is spent for now."""

    def __init__(self, provider: str, retry_after_s: float) -> None:
        super().__init__(
            provider, f"request budget exhausted; next request allowed in {retry_after_s:.1f}s"
        )
        self.retry_after_s = retry_after_s
