"""Which adapter class normalizes which feed kind.

``ADAPTERS`` maps a kind to its adapter class: the four real feeds, and any
kind added with ``register()``. ``build_adapter(feed)`` builds the adapter of
``feed.kind``. The fixture provider builds its inner adapter (the recorded
kind's) here; ``providers.registry.adapter_for``, the entry point everyone
else uses, adds the ``fixture`` kind itself. So imports point one way:
registry -> fixture -> kinds -> adapters. Pure: it imports no I/O library.
"""

from __future__ import annotations

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

#: Kinds that ``providers.registry`` registers on first use.
ON_DEMAND_KINDS: frozenset[str] = frozenset({"fixture"})


def register(adapter: type[Adapter]) -> type[Adapter]:
    """Add an adapter class under its ``kind`` (usable as a class decorator)."""
    ADAPTERS[adapter.kind] = adapter
    return adapter


def build_adapter(feed: FeedConfig) -> Adapter:
    """The adapter of ``feed.kind`` for ``feed``; a clear ``ProviderError`` for an
    unknown kind."""
    adapter = ADAPTERS.get(feed.kind)
    if adapter is None:
        known = ", ".join(sorted({*ADAPTERS, *ON_DEMAND_KINDS}))
        raise ProviderError(
            feed.kind,
            f"feed {feed.name!r} has unknown kind {feed.kind!r}; use one of: {known}",
        )
    return adapter(feed)
