"""Feed configuration as plain data (a row of the feeds table).

Lives in the kernel so the store can return it and providers can read it
without either depending on the other; ``providers.base`` re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from livescore.errors import ConfigError

FEED_KINDS: tuple[str, ...] = ("football-data", "api-football", "espn", "thesportsdb", "fixture")

#: A response body larger than this is refused unless the feed sets its own cap.
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class FeedConfig:
    """One configured feed (a row of the feeds table, as plain data).

    ``priority``: lower numbers are trusted first (1 beats 10).
    ``secret_env``: the environment variable holding the API key; the secret
    itself is never stored.
    """

    name: str
    kind: str
    base_url: str | None = None
    secret_env: str | None = None
    priority: int = 100
    competitions: tuple[str, ...] = ()
    poll_live_s: float = 15.0
    poll_idle_s: float = 600.0
    budget_per_minute: int | None = None
    enabled: bool = True
    #: Size cap of one response body (None: ``DEFAULT_MAX_BODY_BYTES``).
    max_body_bytes: int | None = None

    @property
    def body_cap(self) -> int:
        return self.max_body_bytes or DEFAULT_MAX_BODY_BYTES


def check_base_url(kind: str, base_url: str | None) -> None:
    """Refuse a base URL a feed must not use: anything but ``http(s)://host...``
    (a ``fixture`` feed's base URL is a recording's path and is not a URL)."""
    if base_url is None or kind == "fixture":
        return
    parts = urlsplit(base_url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"--base-url {base_url!r} is not an http:// or https:// URL with a host; "
            "give one like https://api.example.com (other schemes are refused)"
        )
