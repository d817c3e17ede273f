"""Every Redis key and channel name, under one prefix (``LIVESCORE_REDIS_PREFIX``).

Pub/Sub channels are global across Redis databases, so the prefix (not the
db number) is what isolates two installs or two test runs on one server.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str

    @property
    def changes_channel(self) -> str:
        """Pub/Sub channel carrying every published match change."""
        return f"{self.prefix}:changes"

    @property
    def heartbeat_channel(self) -> str:
        """Pub/Sub channel the relay pings so edge nodes notice a dead subscription."""
        return f"{self.prefix}:heartbeat"

    @property
    def standings_channel(self) -> str:
        """Pub/Sub channel told when a competition's table rules change
        (``livescore standings rules``): edges drop cached tables and push anew."""
        return f"{self.prefix}:standings"

    @property
    def queue_name(self) -> str:
        """The SAQ queue's name."""
        return f"{self.prefix}:jobs"

    def process(self, ident: str) -> str:
        """A worker process's heartbeat (``livescore.beats``)."""
        return f"{self.prefix}:proc:{ident}"

    @property
    def processes(self) -> str:
        """Sorted set of the worker processes that write a heartbeat, scored by
        when it expires: where readers find them without a SCAN (``livescore.beats``)."""
        return f"{self.prefix}:procs"

    @property
    def tick_beat(self) -> str:
        """When the cron tick last ran (``livescore.beats``)."""
        return f"{self.prefix}:beat:tick"

    def feed_state(self, feed: str) -> str:
        """A feed's poll record: last poll, success, error, failures in a row
        (``livescore.feed_health``)."""
        return f"{self.prefix}:feedstate:{feed}"

    def node(self, ident: str) -> str:
        """An edge worker process's heartbeat (``livescore.beats``)."""
        return f"{self.prefix}:node:{ident}"

    @property
    def failed_jobs(self) -> str:
        """Sorted set of job attempts that raised, scored by time (``livescore.beats``)."""
        return f"{self.prefix}:jobs:failed"

    def budget(self, feed: str) -> str:
        return f"{self.prefix}:budget:{feed}"

    def feed_pause(self, feed: str) -> str:
        """Set (with a TTL) while a provider asked us to wait: the feed's polls are skipped."""
        return f"{self.prefix}:pause:{feed}"

    def feed_in_flight(self, feed: str) -> str:
        """Held (with a TTL) by the one poll of the feed in flight."""
        return f"{self.prefix}:lock:feed:{feed}"

    def body_hash(self, feed: str, request: str) -> str:
        return f"{self.prefix}:bodyhash:{feed}:{request}"

    def rate_limit(self, scope: str, ident: str) -> str:
        return f"{self.prefix}:rl:{scope}:{ident}"

    def cache(self, name: str) -> str:
        return f"{self.prefix}:cache:{name}"

    def lock(self, name: str) -> str:
        return f"{self.prefix}:lock:{name}"
