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


# Libraries that log every request at INFO: noise in CLI output (`providers check`,
# `ingest`, `record`) and worker logs; their lines come back with LIVESCORE_LOG_LEVEL=DEBUG.
QUIET_LIBRARIES = ("httpx", "httpcore")


def setup(level: str = "INFO") -> None:
    """Configure the root logger once per process (stderr, one line per record)."""
    global _configured
    quiet = logging.NOTSET if str(level).upper() == "DEBUG" else logging.WARNING
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(quiet)
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
