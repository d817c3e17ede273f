"""The change bus: ONE Redis Pub/Sub subscription per worker process, fanned
out in process to registered listeners (the REST caches, the WebSocket hub).

The relay publishes every committed change on ``Keys(prefix).changes_channel``
(``store.change_codec``: ``{"type", "matchId", "seq", "data", "ts"}``); those
bytes are also the WebSocket frame, so listeners get them untouched as the
decoded ``Change``'s ``message``.

Usage::

    bus = ChangeBus(redis_url, keys.changes_channel)
    bus.add_listener(lambda msg: print(msg.match_id, msg.seq))   # every change
    bus.add_gap_listener(lambda: print("messages may have been lost"))
    task = app.add_task(bus.run())   # in a before_server_start listener
    ...
    await bus.stop()

Other channels (``extra_channels``, e.g. ``Keys.standings_channel``) ride on
the same subscription; ``add_channel_listener`` gets their raw messages. They
carry signals, not the change log: a message lost in a gap is not replayed.

Listeners are plain functions called in the worker's event loop: they must
not block (queue the work). One failing listener is logged and never stops
the others. A gap listener runs each time the subscription is (re)made:
messages published while it was down are lost (STACK-NOTES), so the caches
drop everything and the hub fills from the change log.

A half-open TCP connection delivers nothing and raises nothing, so the loop
PINGs over the subscription every ``ping_every`` seconds and reconnects
when no PONG came back in time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from livescore.logs import kv
from livescore.runtime import redis_client
from livescore.waiting import wait_event
from store.change_codec import MalformedChange, decode
from store.writes import Change

log = logging.getLogger("livescore.edge.bus")

#: Seconds Redis has to confirm a SUBSCRIBE before the bus reconnects.
SUBSCRIBE_TIMEOUT = 5.0


Listener = Callable[[Change], None]
GapListener = Callable[[], None]
RawListener = Callable[[bytes], None]


class ChangeBus:
    def __init__(
        self,
        redis_url: str,
        channel: str,
        *,
        ping_every: float = 5.0,
        backoff_max: float = 5.0,
        extra_channels: tuple[str, ...] = (),
    ) -> None:
        self.redis_url = redis_url
        self.channel = channel
        #: channel -> listeners of its raw messages (subscribed with ``channel``)
        self._extra: dict[str, list[RawListener]] = {name: [] for name in extra_channels}
        self.ping_every = ping_every
        self.backoff_max = backoff_max
        self._listeners: list[Listener] = []
        self._gap_listeners: list[GapListener] = []
        self._stopping = asyncio.Event()
        #: True while subscribed; /health reports it.
        self.connected = False
        self._beat: Callable[[], None] = lambda: None
        self.received = 0

    def add_listener(self, fn: Listener) -> None:
        """Call ``fn(message)`` for every published change."""
        self._listeners.append(fn)

    def add_channel_listener(self, channel: str, fn: RawListener) -> None:
        """Call ``fn(raw)`` for every message on ``channel`` (one of ``extra_channels``)."""
        if channel not in self._extra:
            raise ValueError(f"{channel!r} is not one of the bus's extra_channels")
        self._extra[channel].append(fn)

    def dispatch_raw(self, channel: str, raw: bytes) -> None:
        """Hand one message of an extra channel to its listeners."""
        for fn in self._extra.get(channel, ()):
            try:
                fn(raw)
            except Exception:
                log.exception(kv("bus.listener_failed", listener=getattr(fn, "__qualname__", fn)))

    def add_gap_listener(self, fn: GapListener) -> None:
        """Call ``fn()`` whenever the subscription is (re)made: earlier messages may be lost."""
        self._gap_listeners.append(fn)

    def dispatch(self, raw: bytes) -> None:
        """Parse one published message and hand it to every listener."""
        try:
            message = decode(raw)
        except MalformedChange as exc:
            log.warning(kv("bus.malformed", channel=self.channel, error=exc, raw=raw[:200]))
            return
        self.received += 1
        for fn in self._listeners:
            try:
                fn(message)
            except Exception:
                log.exception(kv("bus.listener_failed", listener=getattr(fn, "__qualname__", fn)))

    def _gap(self) -> None:
        for fn in self._gap_listeners:
            try:
                fn()
            except Exception:
                log.exception(
                    kv("bus.gap_listener_failed", listener=getattr(fn, "__qualname__", fn))
                )

    async def stop(self) -> None:
        self._stopping.set()

    async def run(self, beat: Callable[[], None] = lambda: None) -> None:
        """Subscribe and dispatch until ``stop()``; reconnect with backoff on any Redis error.
        ``beat`` is called at least every ``backoff_max`` seconds while it runs."""
        self._beat = beat
        backoff = 0.2
        while not self._stopping.is_set():
            beat()
            client = redis_client(self.redis_url)
            # subscribe confirmations are read once (_confirmed), then ignored per call
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(self.channel, *self._extra)
                await self._confirmed(pubsub)
                self.connected = True
                log.info(kv("bus.subscribed", channel=self.channel))
                self._gap()
                backoff = 0.2
                await self._receive(pubsub)
            except (RedisError, OSError, TimeoutError) as exc:
                level = logging.WARNING if self.connected else logging.INFO
                log.log(level, kv("bus.disconnected", channel=self.channel, error=repr(exc)))
            finally:
                self.connected = False
                await _close(pubsub, client)
            if not self._stopping.is_set():
                await wait_event(self._stopping, backoff)  # elapsed: reconnect
                backoff = min(backoff * 2, self.backoff_max)

    async def _confirmed(self, pubsub: aioredis.client.PubSub) -> None:
        """Wait until Redis has processed the SUBSCRIBE: only from then on is every
        published message delivered, so only then may the gap listeners read the
        change log (a message published in between would otherwise be missed
        until the next one showed the jump)."""
        async with asyncio.timeout(SUBSCRIBE_TIMEOUT):
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=False, timeout=1.0)
                if message is not None and message.get("type") == "subscribe":
                    return

    async def _receive(self, pubsub: aioredis.client.PubSub) -> None:
        last_pong = time.monotonic()
        next_ping = last_pong + self.ping_every
        while not self._stopping.is_set():
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            self._beat()
            now = time.monotonic()
            if message is not None:
                if message.get("type") == "pong":
                    last_pong = now
                elif message.get("type") == "message":
                    data = message["data"]
                    raw = data if isinstance(data, bytes) else str(data).encode()
                    channel = message.get("channel")
                    if isinstance(channel, bytes):
                        channel = channel.decode()
                    if channel in self._extra:
                        self.dispatch_raw(channel, raw)
                    else:
                        self.dispatch(raw)
            if now >= next_ping:
                if now - last_pong > 2 * self.ping_every + 1:
                    raise TimeoutError(f"no PONG on the subscription for {now - last_pong:.0f}s")
                await pubsub.ping()
                next_ping = now + self.ping_every


async def _close(pubsub: aioredis.client.PubSub, client: aioredis.Redis) -> None:
    try:
        await pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py 7.4
        await client.aclose()
    except (RedisError, OSError) as exc:
        log.debug(kv("bus.close_failed", error=repr(exc)))
