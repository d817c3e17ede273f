"""Structured log lines: ``event key=value ...`` on one line each.

log.info(kv("poll.done", feed="fd", matches=12, ms=41.2))
-> 2026-11-26T20:00:00 INFO livescore.pipeline poll.done feed=fd matches=12 ms=41.2
"""

from __future__ import annotations

import logging
import sys

_configured = False


def kv(event: str, **fields: object) -> str:
    parts = [event]
    for key, value in fields.items():
        text = str(value)
        if text == "" or any(c in text for c in ' ="\n'):
            text = '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
        parts.append(f"{key}={text}")
    return " ".join(parts)


def setup(level: str = "INFO") -> None:
    """Configure the root logger once per process (stderr, one line per record)."""
    global _configured
    if _configured:
        logging.getLogger().setLevel(level)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s", "%Y-%m-%dT%H:%M:%S")
    )
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    _configured = True
