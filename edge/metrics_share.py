"""The workers of one node share their metrics, so any scrape shows the node's totals.

With ``--workers N`` the main process makes a directory for the node
(``edge.app.serve``) and hands it to every worker. Each worker writes its
registry's snapshot there as ``<pid>.json`` (a temporary file, then
``os.replace``: a reader never sees half a file) when it starts, every
``INTERVAL`` seconds, and whenever it answers a scrape; it deletes the file
when it stops. A scrape renders the answering worker's fresh snapshot plus
every other file younger than ``MAX_AGE`` seconds (a dead worker's numbers
drop out), all series summed (``edge.metrics.render_snapshots``). A file that
cannot be read or is not a snapshot is skipped with a warning.

Writing the answering worker's snapshot before it answers keeps a node's
counters from going backwards between scrapes answered by different workers:
what one scrape showed of a worker, the next one reads at least.

Files are written in the event loop (a few kB, synchronous): a file is only
ever replaced by a later snapshot of the same worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Any

import orjson
from sanic import Sanic

from edge.metrics import REGISTRY, Registry, Snapshot, parse_snapshot, render_snapshots
from livescore.logs import kv
from livescore.supervise import Loop, Loops

log = logging.getLogger("livescore.edge.metrics")

#: Seconds between two writes of a worker's snapshot.
INTERVAL = 1.0
#: A worker's file older than this (seconds) no longer counts: the worker is gone.
MAX_AGE = 5.0


class MetricsShare:
    """One worker's side of the node's shared metrics directory."""

    def __init__(self, directory: str | Path, registry: Registry = REGISTRY) -> None:
        self.directory = Path(directory)
        self.registry = registry
        self.pid = os.getpid()
        self._loops: Loops | None = None

    @property
    def path(self) -> Path:
        return self.directory / f"{self.pid}.json"

    def publish(self, snapshot: Snapshot | None = None) -> Snapshot:
        """Write this worker's snapshot (taken now unless given) and return it."""
        if snapshot is None:
            snapshot = self.registry.snapshot()
        try:
            temporary = self.directory / f"{self.pid}.tmp"
            temporary.write_bytes(orjson.dumps(snapshot))
            os.replace(temporary, self.path)
        except OSError as exc:
            log.warning(kv("edge.metrics_write_failed", path=self.path, error=exc))
        return snapshot

    def others(self) -> list[Snapshot]:
        """The other live workers' snapshots: their files younger than ``MAX_AGE``."""
        snapshots = []
        now = time.time()
        try:
            entries = list(os.scandir(self.directory))
        except OSError as exc:
            log.warning(kv("edge.metrics_dir_unreadable", path=self.directory, error=exc))
            return []
        for entry in entries:
            if not entry.name.endswith(".json") or entry.name == self.path.name:
                continue
            try:
                if now - entry.stat().st_mtime >= MAX_AGE:
                    continue
                snapshots.append(parse_snapshot(orjson.loads(Path(entry.path).read_bytes())))
            except FileNotFoundError:
                continue  # its worker stopped since the listing
            except (OSError, ValueError) as exc:  # orjson.JSONDecodeError is a ValueError
                log.warning(kv("edge.metrics_file_skipped", path=entry.path, error=exc))
        return snapshots

    def render(self) -> str:
        """The node's metrics: this worker's, fresh (published first), and the others'."""
        own = self.publish()
        return render_snapshots([own, *self.others()])

    def start(self, loops: Loops) -> None:
        """Publish now and then every ``INTERVAL`` seconds, as a supervised loop of
        ``loops`` (call from the running loop)."""
        self.publish()
        self._loops = loops
        loops.supervise("metrics_share", self._run, interval=INTERVAL * 2)

    async def _run(self, beat: Loop) -> None:
        while True:
            await asyncio.sleep(INTERVAL)
            try:
                self.publish()
            except Exception:  # a metric callback that raised: try again next time
                log.exception(kv("edge.metrics_snapshot_failed"))
            beat.beat()

    async def stop(self) -> None:
        """Stop publishing and take this worker's numbers out of the node's."""
        if self._loops is not None and "metrics_share" in self._loops.loops:
            await self._loops.stop("metrics_share")
        self._loops = None
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)


def register(app: Sanic[Any, Any], directory: str) -> None:
    """Share this worker's metrics through ``directory`` while the app serves."""

    async def start(app: Sanic[Any, Any]) -> None:
        share = MetricsShare(directory)  # here: the pid of the process that serves
        app.ctx.metrics_share = share
        share.start(app.ctx.edge.loops)

    async def stop(app: Sanic[Any, Any]) -> None:
        share: MetricsShare | None = getattr(app.ctx, "metrics_share", None)
        if share is not None:
            await share.stop()

    app.after_server_start(start)
    app.before_server_stop(stop)


def render(app: Sanic[Any, Any]) -> str:
    """What ``/metrics`` answers: the node's totals, or this process's alone when
    it shares with no other worker."""
    share: MetricsShare | None = getattr(app.ctx, "metrics_share", None)
    return REGISTRY.render() if share is None else share.render()
