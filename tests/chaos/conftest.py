"""The hostile-input suite runs against the WebSocket suite's real processes:
one ``livescore serve`` node and the real relay for the whole module."""

from __future__ import annotations

from tests.ws.conftest import make_relay, module_edge, module_keys, module_relay, pool

__all__ = ["make_relay", "module_edge", "module_keys", "module_relay", "pool"]
