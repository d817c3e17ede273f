"""Which adapter class serves which feed kind.

The four real feeds are registered here. The ``fixture`` kind (recorded
responses served back through the real adapters) lives in
``providers.fixture``; it is imported on first use only, because it pulls in
httpx for its transport and itself asks this registry for the inner adapter.
Other kinds can be added with ``register()``.
"""

from __future__ import annotations

import importlib

from providers.api_football import ApiFootballAdapter
from providers.base import Adapter, FeedConfig
from providers.errors import ProviderError
from providers.espn import EspnAdapter
from providers.football_data import FootballDataAdapter
from providers.thesportsdb import TheSportsDbAdapter

ADAPTERS: dict[str, type[Adapter]] = {
    adapter.kind: adapter
    for adapter in (FootballDataAdapter, ApiFootballAdapter, EspnAdapter, TheSportsDbAdapter)
}


def register(adapter: type[Adapter]) -> type[Adapter]:
    """Add an adapter class under its ``kind`` (usable as a class decorator)."""
    ADAPTERS[adapter.kind] = adapter
    return adapter


def adapter_for(feed: FeedConfig) -> Adapter:
    """The adapter for ``feed``; a clear ``ProviderError`` for an unknown kind."""
    if feed.kind == "fixture" and "fixture" not in ADAPTERS:
        register(importlib.import_module("providers.fixture").FixtureAdapter)
    adapter = ADAPTERS.get(feed.kind)
    if adapter is None:
        known = ", ".join(sorted({*ADAPTERS, "fixture"}))
        raise ProviderError(
            feed.kind,
            f"feed {feed.name!r} has unknown kind {feed.kind!r}; use one of: {known}",
        )
    return adapter(feed)
