"""One exception tree for LiveScore.

    LiveScoreError
    ├── ConfigError               a setting is missing or wrong (say which to set)
    ├── EmbeddedServerError       the embedded PostgreSQL/Redis could not start/stop
    ├── StoreError                raised by store/
    │   ├── MigrationError        a migration failed or was edited after it ran
    │   ├── NotFound              a match/team/feed/key that does not exist
    │   ├── Conflict              a unique rule would be broken
    │   └── InvalidChange         a write the schema's rules refuse
    ├── ProviderError             raised by providers/ (defined in providers.errors)
    └── PipelineError             raised by pipeline/

Messages say what to do next. Third-party errors are converted at the
boundary with ``raise ... from exc``.
"""

from __future__ import annotations


class LiveScoreError(Exception):
    """Base of every error LiveScore raises on purpose."""


class ConfigError(LiveScoreError):
    """A setting is missing or malformed; the message names the variable to set."""


class EmbeddedServerError(LiveScoreError):
    """The embedded PostgreSQL or Redis could not be started, found or stopped."""


class StoreError(LiveScoreError):
    """Base of errors raised by the store layer."""


class MigrationError(StoreError):
    """A migration failed, or a migration file changed after it was applied."""


class NotFound(StoreError):
    """The thing asked for does not exist."""

    def __init__(self, kind: str, ident: object) -> None:
        super().__init__(f"{kind} {ident!r} not found")
        self.kind = kind
        self.ident = ident


class Conflict(StoreError):
    """The write would break a unique rule (a name already taken, ...)."""


class InvalidChange(StoreError):
    """The write breaks a rule of the canonical model (negative score, bad status...)."""


class PipelineError(LiveScoreError):
    """Base of errors raised by the pipeline."""
