"""Each edge worker process's heartbeat in Redis, for ``livescore status``'s
EDGE NODES: the node's id, this process's start time, the version it runs and
its WebSocket connections and subscriptions (read from the metrics registry,
so this module knows nothing of the hub). ``livescore.beats.read_nodes``
groups the processes of one node; a process that stops cleanly deletes its
key, one killed outright drops out when the key expires."""

from __future__ import annotations

import asyncio
import logging
import os
import time

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from edge.metrics import REGISTRY
from livescore import __version__, beats
from livescore.keys import Keys
from livescore.logs import kv
from livescore.supervise import Loop

log = logging.getLogger("livescore.edge.node_beat")


class NodeBeat:
    def __init__(self, redis: aioredis.Redis, keys: Keys, node: str) -> None:
        self.redis = redis
        self.keys = keys
        self.node = node
        self.pid = os.getpid()
        self.started = time.time()

    def current(self) -> beats.NodeBeat:
        return beats.NodeBeat(
            node=self.node,
            pid=self.pid,
            started=self.started,
            at=time.time(),
            version=__version__,
            connections=int(REGISTRY.value("livescore_ws_connections") or 0),
            subscriptions=int(REGISTRY.value("livescore_ws_subscriptions") or 0),
        )

    async def run(self, loop: Loop) -> None:
        """The supervised loop: write the heartbeat, beat, wait."""
        while True:
            try:
                await beats.write_node(self.redis, self.keys, self.current())
            except (RedisError, OSError) as exc:
                log.debug(kv("node_beat.write_failed", error=repr(exc)))
            loop.beat()
            await asyncio.sleep(beats.NODE_BEAT_S)

    async def remove(self) -> None:
        try:
            await beats.remove_node(self.redis, self.keys, self.node, self.pid)
        except (RedisError, OSError) as exc:
            log.warning(kv("node_beat.remove_failed", error=repr(exc)))
