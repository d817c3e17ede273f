"""The adapter of a feed: ``adapter_for(feed)``, for every kind including ``fixture``.

The four real kinds and ``register()`` live in ``providers.kinds`` (re-exported
here). The ``fixture`` kind (recorded responses served back through the real
adapters, ``providers.fixture``) is registered on first use only, because it
pulls in httpx for its transport. ``providers.fixture`` builds its inner
adapter with ``providers.kinds``, never with this module: no import cycle.
"""

from __future__ import annotations

from providers.base import Adapter, FeedConfig
from providers.kinds import ADAPTERS, build_adapter, register

__all__ = ["ADAPTERS", "adapter_for", "register"]


def adapter_for(feed: FeedConfig) -> Adapter:
    """The adapter for ``feed``; a clear ``ProviderError`` for an unknown kind."""
    if feed.kind == "fixture" and "fixture" not in ADAPTERS:
        from providers.fixture import FixtureAdapter  # on first use: it imports httpx

        register(FixtureAdapter)
    return build_adapter(feed)
