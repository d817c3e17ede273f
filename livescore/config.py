"""Configuration, read from the environment in one place.

Every setting LiveScore reads is in ``SETTINGS`` below; README's settings
table is checked against it by a test. A missing or malformed value raises
``ConfigError`` with a one-line message naming the variable to set.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from livescore.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Setting:
    env: str
    default: str | None
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("DATABASE_URL", None, "Postgres DSN; unset: the embedded PostgreSQL"),
    Setting("REDIS_URL", None, "Redis URL; unset: the embedded Redis"),
    Setting(
        "LIVESCORE_DATA_DIR",
        "~/.local/share/livescore",
        "where the embedded servers keep their data",
    ),
    Setting("PORT", "8000", "edge HTTP+WebSocket port (`serve --port` wins)"),
    Setting(
        "LIVESCORE_REDIS_PREFIX",
        "livescore",
        "prefix of every Redis key, channel and SAQ queue (isolates installs/test runs)",
    ),
    Setting("LIVESCORE_NODE_ID", None, "this edge node's id in /health and welcome frames"),
    Setting("LIVESCORE_LOG_LEVEL", "INFO", "log level: DEBUG, INFO, WARNING, ERROR"),
    Setting(
        "LIVESCORE_STALE_AFTER",
        "180",
        "seconds without a fresh observation before a live match is flagged stale",
    ),
    Setting(
        "LIVESCORE_FINISHED_WINDOW",
        "7200",
        "seconds after full time during which provider corrections are still applied",
    ),
    Setting(
        "LIVESCORE_MATCH_DURATION",
        "6300",
        "expected seconds from kickoff to full time for matches without provider coverage",
    ),
    Setting(
        "LIVESCORE_RATE_LIMIT",
        "600/60",
        "REST requests allowed per client address: COUNT/SECONDS (per API key: the same)",
    ),
    Setting(
        "LIVESCORE_PROXIES_COUNT",
        "0",
        "reverse proxies in front of the edge whose X-Forwarded-For is trusted (0: none)",
    ),
    Setting(
        "LIVESCORE_WS_ORIGINS",
        "",
        "comma-separated Origin values allowed on /ws; empty: any origin",
    ),
    Setting(
        "LIVESCORE_CORS_ORIGINS",
        "*",
        "comma-separated origins whose pages may call the REST API from a browser (CORS), "
        "or * for any (reads and writes: writes need a bearer key, never cookies)",
    ),
    Setting("LIVESCORE_WS_QUEUE", "256", "frames queued per WebSocket client before it is dropped"),
    Setting(
        "LIVESCORE_WS_MAX_SUBSCRIPTIONS", "100", "subscriptions one WebSocket may hold at once"
    ),
    Setting(
        "LIVESCORE_WS_RING",
        "1000",
        "recent changes each edge worker keeps per followed match, to serve resumes "
        "from memory (0: every resume reads the change log)",
    ),
    Setting(
        "LIVESCORE_SSE_HEARTBEAT",
        "15",
        "seconds between heartbeat comments on a quiet /sse stream (proxies close idle ones)",
    ),
    Setting(
        "LIVESCORE_RELAY_STALL_AFTER",
        "10",
        "seconds a committed change may stay unpublished before /health answers 503",
    ),
    Setting(
        "LIVESCORE_WS_UPGRADE_RATE",
        "200/10",
        "/ws upgrades allowed per client address, shared by every node: COUNT/SECONDS",
    ),
    Setting(
        "LIVESCORE_WS_MAX_PER_ADDRESS",
        "5000",
        "open WebSockets allowed per client address on each edge worker",
    ),
    Setting(
        "LIVESCORE_WEBHOOK_TIMEOUT",
        "15",
        "seconds one webhook delivery attempt may take (connect, send, answer)",
    ),
    Setting(
        "LIVESCORE_WEBHOOK_ATTEMPTS",
        "8",
        "attempts of one webhook delivery before it is dead-lettered",
    ),
    Setting(
        "LIVESCORE_WEBHOOK_BACKOFF",
        "10",
        "seconds before a webhook delivery's first retry; each later gap is 5 times longer",
    ),
)

_DEFAULTS = {s.env: s.default for s in SETTINGS}


@dataclass(frozen=True, slots=True)
class RateLimit:
    count: int
    seconds: int


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting, parsed and validated."""

    database_url: str | None
    redis_url: str | None
    data_dir: Path
    port: int
    redis_prefix: str
    node_id: str
    log_level: str
    stale_after_s: int
    finished_window_s: int
    match_duration_s: int
    rate_limit: RateLimit
    ws_origins: tuple[str, ...]
    ws_queue: int
    ws_max_subscriptions: int
    #: How many reverse proxies append to X-Forwarded-For in front of the edge
    #: (0: the peer address is the client; nginx in docker-compose: 1).
    proxies_count: int = 0
    #: Seconds a committed change may stay unpublished before /health is a 503.
    relay_stall_after_s: int = 10
    #: /ws upgrades per client address (a Redis bucket shared by every node).
    ws_upgrade_rate: RateLimit = RateLimit(200, 10)
    #: Open WebSockets per client address, counted by each edge worker.
    ws_max_per_address: int = 5000
    #: Origins whose pages may call the REST API (CORS); ("*",): any.
    cors_origins: tuple[str, ...] = ("*",)
    #: Seconds one webhook delivery attempt may take.
    webhook_timeout_s: float = 15.0
    #: Attempts of one webhook delivery before it is dead-lettered.
    webhook_attempts: int = 8
    #: Seconds before a webhook delivery's first retry (later gaps grow 5x).
    webhook_backoff_s: float = 10.0
    #: Recent changes kept per followed match by each edge worker (0: no ring).
    ws_ring: int = 1000
    #: seconds between heartbeat comments on a quiet /sse stream
    sse_heartbeat: float = 15.0

    @property
    def embedded(self) -> bool:
        """True when at least one of Postgres/Redis comes from the embedded servers."""
        return self.database_url is None or self.redis_url is None


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None or value.strip() == "":
        return _DEFAULTS[name]
    return value.strip()


def _int(env: Mapping[str, str], name: str, *, low: int, high: int) -> int:
    raw = _get(env, name)
    assert raw is not None  # every integer setting has a default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(
            f"{name}={raw!r} is not a whole number; set it to e.g. {_DEFAULTS[name]}"
        ) from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={value} is out of range; set it between {low} and {high}")
    return value


def _url(
    env: Mapping[str, str], name: str, schemes: tuple[str, ...], *, conninfo: bool = False
) -> str | None:
    raw = _get(env, name)
    if raw is None:
        return None
    if conninfo and "://" not in raw and re.match(r"^\s*\w+\s*=", raw):
        return raw  # libpq's key=value form: "host=/run/pg dbname=livescore"
    scheme = raw.split("://", 1)[0] if "://" in raw else ""
    if scheme not in schemes:
        raise ConfigError(
            f"{name}={raw!r} is not a {'/'.join(schemes)} URL; "
            f"set it like {schemes[0]}://host:port/... or unset it for the embedded server"
        )
    return raw


def _float(env: Mapping[str, str], name: str, *, low: float, high: float) -> float:
    raw = _get(env, name)
    assert raw is not None  # every number setting has a default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(
            f"{name}={raw!r} is not a number of seconds; set it to e.g. {_DEFAULTS[name]}"
        ) from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={value:g} is out of range; set it between {low:g} and {high:g}")
    return value


def _rate(env: Mapping[str, str], name: str) -> RateLimit:
    raw = _get(env, name) or ""
    match = re.fullmatch(r"(\d+)\s*/\s*(\d+)", raw)
    if not match or int(match[1]) < 1 or int(match[2]) < 1:
        raise ConfigError(f"{name}={raw!r} must look like COUNT/SECONDS, e.g. 600/60")
    return RateLimit(int(match[1]), int(match[2]))


_ORIGIN = re.compile(r"https?://[^\s/?#,]+")


def _origins(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = _get(env, name) or "*"
    origins = tuple(o.strip() for o in raw.split(",") if o.strip())
    if origins == ("*",):
        return origins
    for origin in origins:
        if not _ORIGIN.fullmatch(origin):
            raise ConfigError(
                f"{name}: {origin!r} is not an origin; set * or a comma list like "
                "https://scores.example,http://localhost:3000 (scheme://host[:port], no path)"
            )
    return origins


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting from ``env`` (default: ``os.environ``)."""
    env = os.environ if env is None else env
    prefix = _get(env, "LIVESCORE_REDIS_PREFIX") or "livescore"
    if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", prefix):
        raise ConfigError(
            f"LIVESCORE_REDIS_PREFIX={prefix!r} may only hold letters, digits and _.:- (1-64)"
        )
    level = (_get(env, "LIVESCORE_LOG_LEVEL") or "INFO").upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError(f"LIVESCORE_LOG_LEVEL={level!r}; set DEBUG, INFO, WARNING or ERROR")
    data_dir = Path(_get(env, "LIVESCORE_DATA_DIR") or "~/.local/share/livescore").expanduser()
    origins = tuple(o.strip() for o in (_get(env, "LIVESCORE_WS_ORIGINS") or "").split(",") if o)
    return Settings(
        database_url=_url(env, "DATABASE_URL", ("postgresql", "postgres"), conninfo=True),
        redis_url=_url(env, "REDIS_URL", ("redis", "rediss", "unix")),
        data_dir=data_dir.resolve(),
        port=_int(env, "PORT", low=1, high=65535),
        redis_prefix=prefix,
        node_id=_get(env, "LIVESCORE_NODE_ID") or f"{socket.gethostname()}-{os.getpid()}",
        log_level=level,
        stale_after_s=_int(env, "LIVESCORE_STALE_AFTER", low=10, high=86400),
        finished_window_s=_int(env, "LIVESCORE_FINISHED_WINDOW", low=0, high=7 * 86400),
        match_duration_s=_int(env, "LIVESCORE_MATCH_DURATION", low=60, high=86400),
        rate_limit=_rate(env, "LIVESCORE_RATE_LIMIT"),
        ws_origins=origins,
        ws_queue=_int(env, "LIVESCORE_WS_QUEUE", low=4, high=100_000),
        ws_max_subscriptions=_int(env, "LIVESCORE_WS_MAX_SUBSCRIPTIONS", low=1, high=100_000),
        proxies_count=_int(env, "LIVESCORE_PROXIES_COUNT", low=0, high=10),
        relay_stall_after_s=_int(env, "LIVESCORE_RELAY_STALL_AFTER", low=1, high=86400),
        ws_upgrade_rate=_rate(env, "LIVESCORE_WS_UPGRADE_RATE"),
        ws_max_per_address=_int(env, "LIVESCORE_WS_MAX_PER_ADDRESS", low=1, high=10_000_000),
        cors_origins=_origins(env, "LIVESCORE_CORS_ORIGINS"),
        webhook_timeout_s=_float(env, "LIVESCORE_WEBHOOK_TIMEOUT", low=0.5, high=120),
        webhook_attempts=_int(env, "LIVESCORE_WEBHOOK_ATTEMPTS", low=1, high=20),
        webhook_backoff_s=_float(env, "LIVESCORE_WEBHOOK_BACKOFF", low=0.05, high=86400),
        ws_ring=_int(env, "LIVESCORE_WS_RING", low=0, high=100_000),
        sse_heartbeat=_float(env, "LIVESCORE_SSE_HEARTBEAT", low=0.05, high=3600.0),
    )
