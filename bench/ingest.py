"""Ingest benchmark: a local provider farm polled by real ``livescore worker``
processes through SAQ, with WebSocket subscribers on a sample of matches.

    .venv/bin/python bench/ingest.py [--matches 960] [--share 0.1] [--duration 20]
                                     [--rate 300] [--subscribers 50]

* The farm (in this process, plain asyncio HTTP/1.1) serves ``--matches``
  live matches as three feeds of different kinds and trust: football-data
  (priority 10, ids 5xxxxx, "Northbury Rovers FC"), API-Football (priority
  20, ids 9xxxxx, "Northbury Rovers") and TheSportsDB's live list (priority
  30, ids 3xxxxxx, "AFC Northbury Rovers", scores as strings). Every response
  changes ``--share`` of its matches: football-data scores a goal in them,
  the others move their clock and catch up with football-data's score.
* The feeds are polled by real worker processes (``livescore worker``: SAQ,
  the relay, the cron tick and sweep): this process enqueues the ``poll``
  jobs through SAQ the way the tick does, one feed at a time in flight
  (the workers' per-feed lock), and reads each job's result.
* Warm-up: one poll of each feed resolves and creates every match (not timed).
* Throughput: every feed polled back to back for ``--duration`` seconds, with
  one worker, then with two. Observations/s and the workers' CPU (utime +
  stime from /proc) per observation.
* Latency: ``--subscribers`` WebSocket clients (one ``livescore serve``
  node) on a sample of matches; polls paced to ``--rate`` observations/s;
  each football-data goal is timed from the moment the farm wrote the
  response holding it to the moment a client receives the score change.
* The physical floor, measured in this run: this process parsing and
  fingerprinting the same responses (what any ingest must do per
  observation) and PostgreSQL's raw write path (``apply_change``) for the
  changed share.

Uses DATABASE_URL/REDIS_URL when set, else the embedded servers; a scratch
database and a Redis prefix of its own, dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from harness import (
    LIVESCORE,
    Scratch,
    cpu_seconds,
    free_port,
    interrupt_on_sigterm,
    percentile,
    spawn,
    stop_all,
    wait_healthy,
)

from livescore import clock
from livescore.feeds import FeedConfig
from livescore.keys import Keys
from livescore.model import MatchPatch
from livescore.runtime import redis_client
from pipeline import observation_codec as codec
from pipeline.ingest import PARALLEL
from pipeline.jobs import POLL_TIMEOUT_S
from pipeline.worker import make_queue
from providers.base import RawResponse
from providers.registry import adapter_for
from store.db import connect, open_pool
from store.feeds import add_feed
from store.matches import NewMatch, create_match
from store.migrate import migrate
from store.reference import get_or_create_team
from store.writes import apply_change

TOWNS = [
    "Northbury",
    "Southwick",
    "Eastmere",
    "Westfold",
    "Ashcombe",
    "Brackley",
    "Caverton",
    "Dunmore",
    "Elmstead",
    "Fenwick",
    "Glenholt",
    "Harwood",
    "Ironbridge",
    "Juniper",
    "Kestrel",
    "Larkhill",
    "Marlowe",
    "Netherby",
    "Oakhurst",
    "Pendle",
    "Quarrington",
    "Redcliffe",
    "Stonebury",
    "Thornaby",
    "Upwell",
    "Valemont",
    "Whitmoor",
    "Yarrowby",
    "Zennor",
    "Ambleside",
    "Birchfield",
    "Coldharbour",
    "Deepdale",
    "Edgecombe",
    "Foxley",
    "Greywell",
    "Hollins",
    "Ivybridge",
    "Jarrowfield",
    "Kingsmead",
    "Lowther",
    "Millbrook",
    "Norwood",
    "Ormsby",
    "Pilton",
    "Quenby",
    "Rushden",
    "Selwood",
    "Tolland",
    "Ulverby",
    "Wendover",
    "Axbridge",
    "Bramhope",
    "Chilcote",
    "Dursley",
    "Eynsford",
    "Fulbeck",
    "Garside",
    "Hexworth",
    "Ilsington",
    "Kelbrook",
    "Lydford",
    "Moreby",
    "Nettleham",
    "Otterburn",
    "Pevensey",
    "Ramsgill",
    "Shilbottle",
    "Tarrant",
    "Uffington",
    "Wrexby",
    "Aldwick",
    "Blencowe",
    "Cranmore",
    "Dalbury",
    "Egremont",
    "Farleigh",
    "Glaisdale",
    "Holbeck",
    "Inglewood",
    "Kirkham",
    "Langport",
    "Melksham",
    "Newbold",
    "Orleton",
    "Penhallow",
    "Rothley",
    "Sedbergh",
    "Thrapston",
    "Wansford",
    "Yelvertoft",
    "Arkholme",
    "Brompton",
    "Cawston",
    "Dinnington",
    "Ellerby",
]
SUFFIXES = [
    "Rovers",
    "United",
    "Athletic",
    "Wanderers",
    "Albion",
    "Harriers",
    "Rangers",
    "Town",
    "Olympic",
    "Vale",
    "Dynamo",
    "Corinthians",
    "Celtic",
    "Spartans",
    "Pilgrims",
    "Mariners",
    "Magpies",
    "Swifts",
    "Tigers",
    "Foxes",
]
KINDS = ("football-data", "api-football", "thesportsdb")
PRIORITY = {"football-data": 10, "api-football": 20, "thesportsdb": 30}
PATHS = {
    "/v4/matches": "football-data",
    "/fixtures": "api-football",
    "/api/v2/json/livescore/soccer": "thesportsdb",
}


# -- the provider farm ------------------------------------------------------------------------


@dataclass
class FarmMatch:
    index: int
    home: str
    away: str
    fd: list[int] = field(default_factory=lambda: [0, 0, 1])  # home, away, minute
    af: list[int] = field(default_factory=lambda: [0, 0, 1])
    ts: list[int] = field(default_factory=lambda: [0, 0, 1])


class Farm:
    """N live matches as three providers; each response changes ``share`` of them."""

    def __init__(self, n: int, share: float, seed: int = 15) -> None:
        self.rng = random.Random(seed)
        names = [f"{t} {s}" for s in SUFFIXES for t in TOWNS]
        self.rng.shuffle(names)
        if 2 * n > len(names):
            raise SystemExit(f"--matches at most {len(names) // 2}")
        self.matches = [FarmMatch(i, names[2 * i], names[2 * i + 1]) for i in range(n)]
        self.share = share
        self.kickoff = (clock.now() - timedelta(minutes=30)).replace(second=0, microsecond=0)
        #: (football-data id, home score) -> when the response first holding it was written
        self.goal_sent: dict[tuple[str, int], float] = {}
        self.changing = True
        self.responses = 0

    def _changed(self) -> list[FarmMatch]:
        if not self.changing:
            return []
        k = max(1, round(self.share * len(self.matches)))
        return self.rng.sample(self.matches, k)

    def body(self, kind: str) -> bytes:
        self.responses += 1
        for m in self._changed():
            if kind == "football-data":
                m.fd[0] += 1
                m.fd[2] = m.fd[2] % 90 + 1
            else:
                view = m.af if kind == "api-football" else m.ts
                view[0], view[1] = m.fd[0], m.fd[1]
                view[2] = view[2] % 90 + 1
        if kind == "football-data":
            return orjson.dumps({"resultSet": {"count": len(self.matches)},
                                 "matches": [self._fd(m) for m in self.matches]})  # fmt: skip
        if kind == "api-football":
            items = [self._af(m) for m in self.matches]
            return orjson.dumps({"get": "fixtures", "parameters": {"live": "all"}, "errors": [],
                                 "results": len(items), "paging": {"current": 1, "total": 1},
                                 "response": items})  # fmt: skip
        return orjson.dumps({"livescore": [self._ts(m) for m in self.matches]})

    def _fd(self, m: FarmMatch) -> dict[str, Any]:
        return {
            "area": {"id": 2072, "name": "England", "code": "ENG"},
            "competition": {"id": 9001, "name": "Bench League", "code": "BL", "type": "LEAGUE"},
            "id": 500000 + m.index,
            "utcDate": self.kickoff.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "status": "IN_PLAY",
            "minute": m.fd[2],
            "matchday": 6,
            "stage": "REGULAR_SEASON",
            "homeTeam": {"id": 10000 + 2 * m.index, "name": f"{m.home} FC",
                         "shortName": m.home, "tla": None},
            "awayTeam": {"id": 10001 + 2 * m.index, "name": f"{m.away} FC",
                         "shortName": m.away, "tla": None},
            "score": {"winner": None, "duration": "REGULAR",
                      "fullTime": {"home": m.fd[0], "away": m.fd[1]},
                      "halfTime": {"home": None, "away": None}},
        }  # fmt: skip

    def _af(self, m: FarmMatch) -> dict[str, Any]:
        return {
            "fixture": {"id": 900000 + m.index, "timezone": "UTC",
                        "date": self.kickoff.isoformat(),
                        "timestamp": int(self.kickoff.timestamp()),
                        "status": {"long": "First Half", "short": "1H", "elapsed": m.af[2],
                                   "extra": None}},
            "league": {"id": 9001, "name": "Bench League", "country": "England", "season": 2026,
                       "round": "Regular Season - 6"},
            "teams": {"home": {"id": 20000 + 2 * m.index, "name": m.home, "winner": None},
                      "away": {"id": 20001 + 2 * m.index, "name": m.away, "winner": None}},
            "goals": {"home": m.af[0], "away": m.af[1]},
            "score": {"halftime": {"home": None, "away": None},
                      "fulltime": {"home": None, "away": None},
                      "extratime": {"home": None, "away": None},
                      "penalty": {"home": None, "away": None}},
            "events": [],
        }  # fmt: skip

    def _ts(self, m: FarmMatch) -> dict[str, Any]:
        return {
            "idLiveScore": str(7000000 + m.index), "idEvent": str(3000000 + m.index),
            "strSport": "Soccer", "idLeague": "9001", "strLeague": "Bench League",
            "idHomeTeam": str(40000 + 2 * m.index), "idAwayTeam": str(40001 + 2 * m.index),
            "strHomeTeam": f"AFC {m.home}", "strAwayTeam": f"AFC {m.away}",
            "intHomeScore": str(m.ts[0]), "intAwayScore": str(m.ts[1]),
            "strStatus": "1H", "strProgress": str(m.ts[2]),
            "strTimestamp": self.kickoff.strftime("%Y-%m-%dT%H:%M:%S"),
            "strEventTime": self.kickoff.strftime("%H:%M"),
            "dateEvent": self.kickoff.date().isoformat(),
            "updated": self.kickoff.strftime("%Y-%m-%d %H:%M:%S"),
        }  # fmt: skip

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                target = head.split(b" ", 2)[1].decode()
                kind = PATHS.get(target.split("?", 1)[0])
                if kind is None:
                    body, status = b'{"message": "not found"}', b"404 Not Found"
                else:
                    body, status = self.body(kind), b"200 OK"
                    if kind == "football-data":
                        sent = time.time()
                        for m in self.matches:
                            self.goal_sent.setdefault((str(500000 + m.index), m.fd[0]), sent)
                writer.write(
                    b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


# -- the run ----------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.scratch = Scratch("ingest")
        self.prefix = self.scratch.prefix
        self.keys = Keys(self.prefix)
        self.database_url = ""
        self.farm = Farm(args.matches, args.share)
        self.farm_port = free_port()
        self.workers: list[subprocess.Popen[bytes]] = []
        self.logs = Path(f"/tmp/{self.prefix}")
        self.logs.mkdir(parents=True, exist_ok=True)
        self.slot = 10**9

    def start_worker(self) -> subprocess.Popen[bytes]:
        log = self.logs / f"worker-{len(self.workers)}.log"
        proc = spawn([LIVESCORE, "worker"], self.scratch.env(), log)
        self.workers.append(proc)
        return proc

    def start_edge(self) -> tuple[int, subprocess.Popen[bytes]]:
        port = free_port()
        command = [LIVESCORE, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
        proc = spawn(command, self.scratch.env(), self.logs / "edge.log")
        wait_healthy(port, proc, f"edge (logs: {self.logs})")
        return port, proc

    async def setup(self) -> None:
        self.database_url = self.scratch.create()
        conn = await connect(self.database_url)
        async with conn:
            await migrate(conn)
            base = f"http://127.0.0.1:{self.farm_port}"
            for kind in KINDS:
                await add_feed(conn, FeedConfig(
                    name=kind, kind=kind, base_url=base, priority=PRIORITY[kind],
                    poll_live_s=3600, poll_idle_s=86400, budget_per_minute=1_000_000,
                ))  # fmt: skip
        # the cron tick would poll each feed once an hour/day: those slots are taken
        redis = redis_client(self.scratch.redis_url)
        now = time.time()
        for kind in KINDS:
            for purpose, seconds in (("live", 3600), ("today", 86400)):
                for slot in (int(now // seconds), int(now // seconds) + 1):
                    key = self.keys.lock(f"poll:{kind}:{purpose}:{slot}")
                    await redis.set(key, "bench", ex=2 * 86400)
        await redis.aclose()

    async def poll(self, queue: Any, kind: str) -> int:
        """One poll of ``kind`` by whichever worker takes it; its observations."""
        self.slot += 1
        job = await queue.enqueue(
            "poll", key=f"poll:{kind}:live:{self.slot}", feed=kind, purpose="live",
            slot=self.slot, timeout=POLL_TIMEOUT_S, retries=1, ttl=600,
        )  # fmt: skip
        assert job is not None
        await job.refresh(until_complete=POLL_TIMEOUT_S + 30)  # SAQ's pub/sub: no polling delay
        result = job.result
        if not isinstance(result, dict) or "observations" not in result:
            if os.environ.get("BENCH_DEBUG"):
                print(f"  poll {kind}: {result}")
            return 0
        return int(result["observations"])

    async def throughput(self, queue: Any, seconds: float) -> tuple[float, list[float], int]:
        """(observations/s, CPU s per observation of each worker, polls)."""
        pids = [w.pid for w in self.workers]
        cpu0 = [cpu_seconds(p) for p in pids]
        counted = [0, 0]
        started = time.perf_counter()
        deadline = started + seconds

        async def loop(kind: str) -> None:
            while time.perf_counter() < deadline:
                counted[0] += await self.poll(queue, kind)
                counted[1] += 1

        await asyncio.gather(*(loop(k) for k in KINDS))
        elapsed = time.perf_counter() - started
        cpu = [cpu_seconds(p) - c for p, c in zip(pids, cpu0, strict=True)]
        total = max(counted[0], 1)
        return counted[0] / elapsed, [c / total for c in cpu], counted[1]

    async def background(self, seconds: float) -> float:
        """Cores the workers burn with no poll running (sweep of every live match
        each 15 s, relay, cron tick, heartbeats), over ``seconds``."""
        pids = [w.pid for w in self.workers]
        cpu0 = sum(cpu_seconds(p) for p in pids)
        await asyncio.sleep(seconds)
        return (sum(cpu_seconds(p) for p in pids) - cpu0) / seconds

    async def latency(self, queue: Any, edge_port: int) -> tuple[list[float], float]:
        """Response-to-client latencies (s) and the observations/s achieved."""
        import websockets

        pool = await open_pool(self.database_url, max_size=2)
        async with pool.connection() as conn:
            cur = await conn.execute(
                "SELECT provider_id, match_id FROM match_crosswalk WHERE provider = %s",
                ("football-data",),
            )
            by_match = {int(r["match_id"]): r["provider_id"] for r in await cur.fetchall()}
        await pool.close()
        sample = random.Random(1).sample(
            sorted(by_match), min(self.args.subscribers, len(by_match))
        )
        latencies: list[float] = []
        kinds: dict[str, int] = {}
        stop = asyncio.Event()

        async def subscriber(match_id: int) -> None:
            url = f"ws://127.0.0.1:{edge_port}/ws"
            async with websockets.connect(url, max_size=None) as ws:
                await ws.send(orjson.dumps({"action": "subscribe", "matchId": match_id}).decode())
                while not stop.is_set():
                    try:
                        raw = await asyncio.wait_for(ws.recv(), 0.5)
                    except TimeoutError:
                        continue
                    got = time.time()
                    msg = orjson.loads(raw)
                    kinds[msg.get("type", "?")] = kinds.get(msg.get("type", "?"), 0) + 1
                    if msg.get("type") != "score:update":
                        continue
                    home = msg["data"].get("homeScore")
                    sent = self.farm.goal_sent.get((by_match[match_id], home))
                    if sent is not None:
                        latencies.append(got - sent)

        subs = [asyncio.create_task(subscriber(m)) for m in sample]
        await asyncio.sleep(2)
        per_round = 3 * len(self.farm.matches)
        gap = per_round / self.args.rate / 3  # one feed's poll every `gap` s, staggered
        observed = 0
        started = time.perf_counter()
        deadline = started + self.args.duration
        tasks: list[asyncio.Task[int]] = []
        n = 0
        while time.perf_counter() < deadline:
            tasks.append(asyncio.create_task(self.poll(queue, KINDS[n % 3])))
            n += 1
            await asyncio.sleep(max(0.0, started + n * gap - time.perf_counter()))
        observed = sum(await asyncio.gather(*tasks))
        rate = observed / (time.perf_counter() - started)
        await asyncio.sleep(2)
        if os.environ.get("BENCH_DEBUG"):
            print("frames received:", kinds)
        stop.set()
        for outcome in await asyncio.gather(*subs, return_exceptions=True):
            if isinstance(outcome, BaseException):
                print(f"  a subscriber failed: {outcome!r}")
        return latencies, rate

    async def floor(self, raw_writes: int) -> tuple[float, float]:
        """(parse + fingerprint CPU s per observation in this process, apply_change s)."""
        feeds = {k: FeedConfig(name=k, kind=k, base_url="http://x") for k in KINDS}
        self.farm.changing = False
        bodies = {k: self.farm.body(k) for k in KINDS}
        started = time.process_time()
        count = 0
        for _ in range(3):
            for kind in KINDS:
                adapter = adapter_for(feeds[kind])
                spec = adapter.live_request() or adapter.today_request(clock.now().date())
                response = RawResponse(
                    feed=kind, kind=kind, purpose="live", method="GET",
                    url="http://x" + spec.path, params=dict(spec.params), status=200,
                    headers={}, body=bodies[kind].decode(), fetched_at=datetime.now(UTC),
                )  # fmt: skip
                for obs in adapter.parse_report(response).observations:
                    codec.fingerprint(codec.to_json(obs))
                    count += 1
        parse = (time.process_time() - started) / max(count, 1)
        pool = await open_pool(self.database_url, max_size=2)
        try:
            async with pool.connection() as conn:
                home = await get_or_create_team(conn, "Floor Home")
                away = await get_or_create_team(conn, "Floor Away")
                match = await create_match(conn, NewMatch(home, away, start_time=clock.now()))
                t = time.perf_counter()
                for i in range(raw_writes):
                    await apply_change(conn, match["id"], MatchPatch("floor", home_score=i + 1,
                                                                     away_score=0))  # fmt: skip
                write = (time.perf_counter() - t) / raw_writes
        finally:
            await pool.close()
        return parse, write

    async def run(self) -> None:
        args = self.args
        server = await asyncio.start_server(self.farm.serve, "127.0.0.1", self.farm_port)
        queue = make_queue(self.scratch.redis_url, self.keys)
        edge: subprocess.Popen[bytes] | None = None
        try:
            await self.setup()
            self.start_worker()
            await queue.connect()
            t = time.perf_counter()
            for kind in KINDS:  # warm-up: resolve and create every match, one feed at a time
                await self.poll(queue, kind)
            print(f"machine: {os.cpu_count()} cpus; {args.matches} live matches x 3 feeds, "
                  f"{args.share:.0%} of each response changing; warm-up "
                  f"{time.perf_counter() - t:.1f} s")  # fmt: skip
            for kind in KINDS:
                await self.poll(queue, kind)  # every worker's cache warm, views fresh
            idle = await self.background(15.5)  # one sweep of every live match
            one = await self.throughput(queue, args.duration)
            self.start_worker()
            await asyncio.sleep(3)
            for kind in KINDS:
                await self.poll(queue, kind)
            two = await self.throughput(queue, args.duration)
            print(f"background (no polls; sweep of {args.matches} live matches every 15 s, relay, "
                  f"tick): {idle:.3f} cores for 1 worker")  # fmt: skip
            print(f"{'throughput':<12}{'obs/s':>7}{'polls':>7}{'CPU us/obs':>12}{'marginal':>10}"
                  f"{'busy cores per worker':>23}{'obs/s per worker':>18}")  # fmt: skip
            marginal_one = 0.0
            for name, (rate, cpu, polls), n in (("1 worker", one, 1), ("2 workers", two, 2)):
                per_obs = sum(cpu)
                marginal = max(per_obs - n * idle / rate, 1e-9) if rate else 0.0
                marginal_one = marginal_one or marginal
                busy = "  ".join(f"{c * rate:.2f}" for c in cpu)
                capacity = (1 - idle) / marginal if marginal else 0.0
                print(f"{name:<12}{rate:>7.0f}{polls:>7}{per_obs * 1e6:>12.0f}"
                      f"{marginal * 1e6:>10.0f}{busy:>23}{capacity:>18.0f}")  # fmt: skip
            print("  (CPU: utime+stime of every worker over the window per observation; "
                  "marginal: minus the background; obs/s per worker = (1 core - background) / "
                  "marginal: what one fully busy worker process ingests)")  # fmt: skip
            edge_port, edge = self.start_edge()
            latencies, rate = await self.latency(queue, edge_port)
            p50, p99 = percentile(latencies, 0.5) * 1e3, percentile(latencies, 0.99) * 1e3
            top = max(latencies or [0.0]) * 1e3
            print(f"latency at {rate:.0f} obs/s ({args.subscribers} WebSocket subscribers, "
                  f"2 workers): provider response -> client p50 {p50:.0f} ms, p99 {p99:.0f} ms, "
                  f"max {top:.0f} ms ({len(latencies)} goals timed)")  # fmt: skip
            parse, write = await self.floor(300)
            floor_obs = 1 / (parse + args.share * write)
            changed = max(1, round(args.share * args.matches))
            floor_latency = changed * write / PARALLEL
            print(f"floor: parse + fingerprint {parse * 1e6:.0f} us/obs of CPU in this process; "
                  f"raw write path {write * 1e3:.2f} ms/change; for {args.share:.0%} changing: "
                  f"<= {floor_obs:.0f} obs/s for one process doing only that; one "
                  f"football-data response's {changed} changes through the raw write path, "
                  f"{PARALLEL} at a time: {floor_latency * 1e3:.0f} ms")  # fmt: skip
            best = (1 - idle) / marginal_one if marginal_one else 0.0
            print(f"targets: >= 1500 obs/s per worker: {'met' if best >= 1500 else 'NOT met'} "
                  f"({best:.0f}); p99 <= 250 ms at 300 obs/s: "
                  f"{'met' if percentile(latencies, 0.99) <= 0.25 else 'NOT met'}")  # fmt: skip
        finally:
            server.close()
            stop_all([*self.workers, *([edge] if edge else [])])
            await queue.disconnect()
            if self.database_url:
                self.scratch.drop()


def main() -> None:
    interrupt_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matches", type=int, default=960)
    parser.add_argument("--share", type=float, default=0.1)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--subscribers", type=int, default=50)
    args = parser.parse_args()
    os.environ.setdefault("LIVESCORE_LOG_LEVEL", "WARNING")
    asyncio.run(Bench(args).run())


if __name__ == "__main__":
    main()
