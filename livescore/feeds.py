"""Feed configuration as plain data (a row of the feeds table).

Lives in the kernel so the store can return it and providers can read it
without either depending on the other; ``providers.base`` re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass

FEED_KINDS: tuple[str, ...] = ("football-data", "api-football", "espn", "thesportsdb", "fixture")


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
