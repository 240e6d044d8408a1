"""WebSocket fan-out: 1,000 subscribers on 2 server processes, a REST writer, end-to-end latency.

A writer creates facilities through the REST API (alternating between the two servers) at a
fixed rate; every subscriber gets every change. Latency runs from just before the write to
each client's receipt (CLOCK_MONOTONIC is shared by processes; the write time rides in the
facility's name). Clients are a minimal asyncio WebSocket client in separate processes, so
their own CPU cost stays small and is reported. Then the rate doubles until p99 > 50 ms.
Never part of the test run.

    .venv/bin/python bench/ws_fanout.py [--subscribers 1000] [--rate 10] [--duration 20]
    .venv/bin/python bench/ws_fanout.py --sweep 0,100,1000 --rate 20 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import json
import os
import sys
import time
import uuid
from array import array
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import itertools

import orjson

from bench.http_client import HttpConnection
from bench.ws_common import (
    PYTHON,
    REDIS_URL,
    ROOT,
    ClientProc,
    Server,
    create_database,
    drop_database,
    make_user_with_token,
    percentile,
    raise_fd_limit,
    server_env,
)
from realtime.fastsend import text_frame

CLIENT_PROCS = 2
BUCKET_MS = 0.1  # latency histogram resolution
P99_LIMIT_MS = 50.0

# -- client process: a minimal WebSocket client (server frames are unmasked, unfragmented) --


class Subscriber(asyncio.Protocol):
    """One socket: handshake, subscribe to facilities, record (id, latency) per event."""

    def __init__(self, host: str, port: int, token: str, ready: asyncio.Future) -> None:
        self.request = (
            f"GET /ws/ HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
            f"Authorization: Bearer {token}\r\n\r\n"
        ).encode()
        self.ready = ready
        self.buf = bytearray()
        self.open = False
        self.transport: asyncio.Transport | None = None
        self.ids = array("q")
        self.lat = array("d")  # write start → receipt (monotonic clock)
        self.lat2 = array("d")  # event time (just before commit) → receipt (wall clock)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)

    def send_frame(self, payload: bytes, opcode: int = 1) -> None:
        n = len(payload)
        if n < 126:
            head = bytes([0x80 | opcode, 0x80 | n])
        else:
            head = bytes([0x80 | opcode, 0xFE]) + n.to_bytes(2, "big")
        assert self.transport is not None
        self.transport.write(head + b"\0\0\0\0" + payload)  # zero mask: payload as is

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self.ready.set_exception(RuntimeError(bytes(buf[:40]).decode()))
                return
            del buf[: end + 4]
            self.open = True
            self.send_frame(b'{"type":"subscribe","topics":["facilities"]}')
        while len(buf) >= 2:
            opcode, n, pos = buf[0] & 0x0F, buf[1] & 0x7F, 2
            if n == 126:
                if len(buf) < 4:
                    return
                n, pos = int.from_bytes(buf[2:4], "big"), 4
            elif n == 127:
                if len(buf) < 10:
                    return
                n, pos = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < pos + n:
                return
            payload = bytes(buf[pos : pos + n])
            del buf[: pos + n]
            if opcode == 1:
                self.on_text(payload)
            elif opcode == 9:
                self.send_frame(payload, 0xA)  # pong: the server drops silent peers

    def on_text(self, payload: bytes) -> None:
        now, wall = time.monotonic(), time.time()
        msg = orjson.loads(payload)
        kind = msg["type"]
        if kind == "event":
            self.ids.append(msg["id"])
            self.lat.append(now - float(msg["data"]["name"].split()[1]))
            self.lat2.append(wall - datetime.fromisoformat(msg["at"]).timestamp())
        elif kind == "subscribed" and not self.ready.done():
            self.ready.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed"))


def phase_stats(subs: list[Subscriber], start: int, end: int) -> dict:
    """Deliveries, lost, duplicates, disorder and latency histogram for ids in (start, end]."""
    expected = set(range(start + 1, end + 1))
    hist: dict[int, int] = {}
    hist2: dict[int, int] = {}
    lost = dup = disorder = count = 0
    worst = 0.0
    for sub in subs:
        ids, lat, lat2 = sub.ids, sub.lat, sub.lat2
        got: list[int] = []
        for i, event_id in enumerate(ids):
            if start < event_id <= end:
                got.append(event_id)
                ms = lat[i] * 1000
                worst = max(worst, ms)
                bucket = int(ms / BUCKET_MS)
                hist[bucket] = hist.get(bucket, 0) + 1
                bucket = int(max(lat2[i], 0) * 1000 / BUCKET_MS)
                hist2[bucket] = hist2.get(bucket, 0) + 1
        count += len(got)
        unique = set(got)
        dup += len(got) - len(unique)
        lost += len(expected - unique)
        disorder += sum(1 for a, b in itertools.pairwise(got) if b <= a)
        keep = [i for i, e in enumerate(ids) if e > end]
        sub.ids = array("q", [ids[i] for i in keep])
        sub.lat, sub.lat2 = array("d", [lat[i] for i in keep]), array("d", [lat2[i] for i in keep])
    return {
        "count": count,
        "lost": lost,
        "dup": dup,
        "disorder": disorder,
        "max": worst,
        "hist": hist,
        "hist2": hist2,
    }


async def client_main(urls: list[str], token: str, count: int) -> None:
    raise_fd_limit()
    loop = asyncio.get_running_loop()
    subs: list[Subscriber] = []
    gate = asyncio.Semaphore(50)

    async def open_one(i: int) -> None:
        host, port = urls[i % len(urls)].rsplit(":", 1)
        async with gate:
            ready = loop.create_future()
            sub = Subscriber(host, int(port), token, ready)
            await loop.create_connection(lambda: sub, host, int(port))
            await asyncio.wait_for(ready, 60)
        subs.append(sub)

    await asyncio.gather(*(open_one(i) for i in range(count)))
    print(json.dumps({"ready": len(subs)}), flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        cmd = json.loads(line)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(
            (not s.ids or s.ids[-1] < cmd["end"]) for s in subs
        ):
            await asyncio.sleep(0.05)
        print(json.dumps(phase_stats(subs, cmd["start"], cmd["end"])), flush=True)


# -- floor: the same clients and frames, served by a bare uvloop fan-out ---------------------


class FloorProtocol(asyncio.Protocol):
    """Just enough WebSocket to serve the benchmark client: 101, "subscribed", then events."""

    def __init__(self, conns: set[asyncio.Transport]) -> None:
        self.conns = conns
        self.transport: asyncio.Transport | None = None
        self.upgraded = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        if not self.upgraded:
            self.upgraded = True
            self.transport.write(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
        elif data[0] & 0x0F == 1:  # the subscribe frame
            self.transport.write(text_frame(b'{"type":"subscribed"}'))
            self.conns.add(self.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.conns.discard(self.transport)  # type: ignore[arg-type]


async def floor_server_main(port: int, channel: str) -> None:
    """Fan each Redis message out as one prebuilt frame to every socket (no checks, no DB)."""
    import redis.asyncio as redis

    raise_fd_limit()
    loop = asyncio.get_running_loop()
    conns: set[asyncio.Transport] = set()
    await loop.create_server(lambda: FloorProtocol(conns), "127.0.0.1", port, backlog=4096)
    client = redis.Redis.from_url(REDIS_URL)
    async with client.pubsub() as pubsub:
        await pubsub.subscribe(channel)
        async for message in pubsub.listen():
            if message["type"] == "message":
                frame = text_frame(message["data"])
                for transport in tuple(conns):
                    transport.write(frame)


class FloorServer(Server):
    """A `floor_server_main` process in place of `bms serve`."""

    def __init__(self, channel: str) -> None:
        super().__init__({})
        self.channel = channel

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            PYTHON, __file__, "--floor-server", str(self.port), self.channel, cwd=ROOT
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return


def floor_event(event_id: int, name: str) -> bytes:
    """An event frame of the size and shape a facility change has."""
    now = datetime.now(UTC).isoformat()
    data = {"id": event_id, "name": name, "location": 1, "kind": "studio", "description": "",
            "is_active": True, "created_at": now, "updated_at": now}  # fmt: skip
    message = {"type": "event", "id": event_id, "topic": "facilities", "action": "created",
               "object_id": event_id, "at": now, "data": data}  # fmt: skip
    return orjson.dumps(message)


class FloorIds:
    """Event ids of the floor writer (BMS takes them from its events table)."""

    def __init__(self) -> None:
        self.last = 0

    def __next__(self) -> int:
        self.last += 1
        return self.last


async def write_floor(
    channel: str, ids: FloorIds, rate: float, secs: float, tag: str
) -> tuple[int, list[float]]:
    """Publish event frames straight to the floor servers' Redis channel at `rate`/s."""
    import redis.asyncio as redis

    client = redis.Redis.from_url(REDIS_URL)
    total = int(rate * secs)
    took: list[float] = []
    start = time.monotonic()
    for i in range(total):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        t = time.monotonic()
        await client.publish(channel, floor_event(next(ids), f"{tag}{i} {t:.6f}"))
        took.append(time.monotonic() - t)
    await client.aclose()
    return 0, took


# -- coordinator -------------------------------------------------------------------------


async def newest_event_id(url: str) -> int:
    import asyncpg

    from bench.ws_common import _dsn

    conn = await asyncpg.connect(_dsn(url))
    try:
        return int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM events"))
    finally:
        await conn.close()


async def make_location(server: Server, token: str) -> int:
    import httpx

    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(
            server.base + "/api/locations/",
            json={"name": "Bench site", "code": "BENCH", "timezone": "UTC"},
            headers={"Authorization": f"Bearer {token}"},
        )
    response.raise_for_status()
    return response.json()["id"]


async def write_at_rate(
    servers: list[Server],
    token: str,
    location: int,
    rate: float,
    secs: float,
    tag: str,
    patch_ids: list[int] | None = None,
) -> tuple[int, list[float]]:
    """Create facilities (or PATCH the names of `patch_ids` in turn) at `rate`/s for `secs`.

    Not waiting for each answer; returns failures and each write's time. Keep-alive
    connections are reused when idle and opened when all are busy.
    """
    total = int(rate * secs)
    failures = 0
    took: list[float] = []
    idle: list[list[HttpConnection]] = [[] for _ in servers]
    opened: list[HttpConnection] = []

    async def one(i: int) -> None:
        nonlocal failures
        t = time.monotonic()
        body = orjson.dumps({"name": f"{tag}{i} {t:.6f}", "location": location, "kind": "studio"})
        pool = idle[i % len(servers)]
        if pool:
            conn = pool.pop()
        else:
            conn = HttpConnection(servers[i % len(servers)].port, token)
            opened.append(conn)
            await conn.open()
        if patch_ids:
            method, ok = "PATCH", 200
            path = f"/api/facilities/{patch_ids[i % len(patch_ids)]}/"
            body = orjson.dumps({"name": f"{tag}{i} {t:.6f}"})
        else:
            method, path, ok = "POST", "/api/facilities/", 201
        try:
            status, _ = await conn.request(method, path, body)
        except (asyncio.IncompleteReadError, ConnectionError):
            # The server closed this idle keep-alive connection (its timeout): a fresh one.
            conn = HttpConnection(servers[i % len(servers)].port, token)
            opened.append(conn)
            await conn.open()
            status, _ = await conn.request(method, path, body)
        took.append(time.monotonic() - t)
        failures += status != ok
        pool.append(conn)

    start = time.monotonic()
    tasks = []
    try:
        for i in range(total):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    finally:
        for conn in opened:
            await conn.close()
    return failures, took


async def write_direct(store: Any, rate: float, secs: float, tag: str) -> tuple[int, list[float]]:
    """Commit facility events through the unit of work (publisher attached), no REST."""
    total = int(rate * secs)
    took: list[float] = []

    async def one(i: int) -> None:
        t = time.monotonic()
        async with store.unit_of_work(actor_id=None) as uow:
            data = {"id": i, "name": f"{tag}{i} {t:.6f}", "kind": "studio"}
            uow.emit("facilities", "created", object_id=i, data=data)
        took.append(time.monotonic() - t)

    start = time.monotonic()
    tasks = []
    for i in range(total):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    return 0, took


def percentile_of(hist: dict[int, int], p: float, bucket_ms: float = BUCKET_MS) -> float:
    goal, seen = p / 100 * sum(hist.values()), 0
    for bucket in sorted(hist):
        seen += hist[bucket]
        if seen >= goal:
            return (bucket + 0.5) * bucket_ms
    return float("nan")


def merge(reports: list[dict]) -> dict:
    hist: dict[int, int] = {}
    hist2: dict[int, int] = {}
    for r in reports:
        for bucket, n in r["hist"].items():
            hist[int(bucket)] = hist.get(int(bucket), 0) + n
        for bucket, n in r["hist2"].items():
            hist2[int(bucket)] = hist2.get(int(bucket), 0) + n

    def pct(p: float) -> float:
        return percentile_of(hist, p)

    return {
        "count": sum(r["count"] for r in reports),
        "lost": sum(r["lost"] for r in reports),
        "dup": sum(r["dup"] for r in reports),
        "disorder": sum(r["disorder"] for r in reports),
        "max": max(r["max"] for r in reports),
        "p50": pct(50),
        "p99": pct(99),
        "c50": percentile_of(hist2, 50),
        "c99": percentile_of(hist2, 99),
    }


async def make_facilities(server: Server, token: str, location: int, count: int) -> list[int]:
    import httpx

    ids = []
    async with httpx.AsyncClient(timeout=30) as http:
        for n in range(count):
            response = await http.post(
                server.base + "/api/facilities/",
                json={"name": f"Patched {n} 0", "location": location, "kind": "studio"},
                headers={"Authorization": f"Bearer {token}"},
            )
            response.raise_for_status()
            ids.append(response.json()["id"])
    return ids


async def patch_sweep(args: argparse.Namespace) -> None:
    """PATCH latency with 0, 100, 1,000 … subscribers: the writer must not wait for fan-out.

    The same servers and rate for every count; subscriber processes start and stop per count.
    """
    url = await create_database()
    scratch = Path(f"/tmp/bms-bench-{uuid.uuid4().hex[:8]}")
    env = server_env(url, f"bmsbench:{uuid.uuid4().hex[:8]}", scratch)
    servers = [Server(env), Server(env)]
    rows = []
    try:
        writer_token = await make_user_with_token(url, "writer", "manager")
        watcher_token = await make_user_with_token(url, "watcher", "viewer")
        await asyncio.gather(*(s.start() for s in servers))
        location = await make_location(servers[0], writer_token)
        targets = await make_facilities(servers[0], writer_token, location, 8)
        urls = ",".join(f"127.0.0.1:{s.port}" for s in servers)
        for n, count in enumerate(args.sweep):
            clients = [
                ClientProc(__file__, urls, watcher_token, str(count // CLIENT_PROCS), limit=2**26)
                for _ in range(CLIENT_PROCS if count else 0)
            ]
            try:
                await asyncio.gather(*(c.start() for c in clients))
                await asyncio.gather(*(c.read() for c in clients))
                start_id = await newest_event_id(url)
                cpu0 = sum(s.cpu_secs() for s in servers)
                failures, took = await write_at_rate(
                    servers, writer_token, location, args.rate, args.duration, f"s{n}-", targets
                )
                cpu = (sum(s.cpu_secs() for s in servers) - cpu0) * 1000 / max(1, len(took))
                end_id = await newest_event_id(url)
                for c in clients:
                    c.tell({"start": start_id, "end": end_id})
                stats = (
                    merge(await asyncio.gather(*(c.read() for c in clients)))
                    if clients
                    else {"p50": float("nan"), "p99": float("nan"), "lost": 0}
                )
            finally:
                for c in clients:
                    await c.finish()
            rows.append((count, len(took), failures, percentile(took, 50) * 1000,
                         percentile(took, 99) * 1000, cpu, stats, os.getloadavg()))  # fmt: skip
            print(f"  {count} subscribers done", flush=True)
        print(
            f"\nPATCH latency by subscribers: {args.rate:g} PATCH/s for {args.duration:g} s over "
            f"{len(servers)} server processes (PATCH: request → response; delivery: write "
            "start → client receipt; server CPU per PATCH includes its fan-out)"
        )
        print(
            f"{'subscribers':>11} {'PATCHes':>7} {'fail':>4} {'PATCH p50':>9} {'PATCH p99':>9} "
            f"{'x p50@0':>7} {'srv CPU ms':>10} {'deliv p50':>9} {'deliv p99':>9} {'lost':>5} "
            "load 1/5/15"
        )
        base = rows[0][3] if rows and rows[0][0] == 0 else float("nan")
        for count, writes, fail, p50, p99, cpu, stats, load in rows:
            print(
                f"{count:>11} {writes:>7} {fail:>4} {p50:>9.1f} {p99:>9.1f} {p50 / base:>7.2f} "
                f"{cpu:>10.2f} {stats['p50']:>9.1f} {stats['p99']:>9.1f} {stats['lost']:>5} "
                f"{', '.join(f'{x:.2f}' for x in load)}"
            )
        print("target (#15): PATCH p50 at 1,000 subscribers within 1.3x of 0 subscribers")
    finally:
        await asyncio.gather(*(s.stop() for s in servers))
        await drop_database(url)


async def coordinator(args: argparse.Namespace) -> None:
    url = await create_database()
    scratch = Path(f"/tmp/bms-bench-{uuid.uuid4().hex[:8]}")
    env = server_env(url, f"bmsbench:{uuid.uuid4().hex[:8]}", scratch)
    floor_ids = FloorIds()
    if args.writer == "floor":
        channel = f"{env['REDIS_NAMESPACE']}:floor"
        servers: list[Server] = [FloorServer(channel), FloorServer(channel)]
    else:
        servers = [Server(env), Server(env)]

    async def newest_id() -> int:
        if args.writer == "floor":
            return floor_ids.last
        return await newest_event_id(url)

    clients: list[ClientProc] = []
    rows = []
    stack = contextlib.AsyncExitStack()
    try:
        writer_token = await make_user_with_token(url, "writer", "manager")
        watcher_token = await make_user_with_token(url, "watcher", "viewer")
        await asyncio.gather(*(s.start() for s in servers))
        if args.writer == "floor":
            writer: Any = functools.partial(write_floor, channel, floor_ids)
        else:
            location = await make_location(servers[0], writer_token)
            writer = functools.partial(write_at_rate, servers, writer_token, location)
        if args.writer == "direct":
            from bms.settings import load_settings
            from db.store import Store
            from realtime.service import running_realtime

            settings = load_settings(
                database_url=url, redis_url=env["REDIS_URL"], secret_key=env["SECRET_KEY"],
                redis_namespace=env["REDIS_NAMESPACE"], bms_env="test", data_dir=scratch,
            )  # fmt: skip
            store = Store(url)
            await store.connect()
            realtime = await stack.enter_async_context(
                running_realtime(store, settings.realtime_settings())
            )
            stack.enter_context(store.sink.plugged(publish=realtime.on_commit))
            stack.push_async_callback(store.disconnect)
            writer = functools.partial(write_direct, store)
        urls = [f"127.0.0.1:{s.port}" for s in servers]
        per = args.subscribers // CLIENT_PROCS
        clients = [
            ClientProc(__file__, ",".join(urls), watcher_token, str(per), limit=2**26)
            for _ in range(CLIENT_PROCS)
        ]
        await asyncio.gather(*(c.start() for c in clients))
        ready = sum(r["ready"] for r in await asyncio.gather(*(c.read() for c in clients)))
        print(f"{ready} subscribers connected over {len(servers)} server processes")
        plan = [(args.rate, args.duration)]
        rate = args.rate * 2
        while rate <= args.max_rate:
            plan.append((rate, args.step_duration))
            rate *= 2
        for n, (rate, secs) in enumerate(plan):
            start_id = await newest_id()
            cpu0 = [c.cpu_secs() for c in clients] + [s.cpu_secs() for s in servers]
            t0 = time.monotonic()
            failures, took = await writer(rate, secs, f"p{n}-")
            end_id = await newest_id()
            for c in clients:
                c.tell({"start": start_id, "end": end_id})
            stats = merge(await asyncio.gather(*(c.read() for c in clients)))
            wall = time.monotonic() - t0
            cpu1 = [c.cpu_secs() for c in clients] + [s.cpu_secs() for s in servers]
            used = [b - a for a, b in zip(cpu0, cpu1, strict=True)]
            rows.append(
                {
                    "rate": rate,
                    "secs": secs,
                    "writes": end_id - start_id,
                    "failures": failures,
                    "rest50": percentile(took, 50) * 1000,
                    "rest99": percentile(took, 99) * 1000,
                    "wall": wall,
                    "client_cpu": sum(used[: len(clients)]) / wall,
                    "server_cpu": sum(used[len(clients) :]) / wall,
                    **stats,
                }
            )
            print(f"  rate {rate}/s done: p99 {stats['p99']:.1f} ms", flush=True)
            if stats["p99"] > P99_LIMIT_MS * 4:
                break
        how = {
            "rest": "REST writer",
            "direct": "unit-of-work writer (no REST)",
            "floor": "FLOOR: bare uvloop servers fanning Redis messages out (no BMS code)",
        }[args.writer]
        print(
            f"\nFan-out: {ready} subscribers on {len(servers)} server processes, "
            f"{how}, PostgreSQL + Redis (latency: write start → client receipt)"
        )
        print(
            f"{'changes/s':>9} {'writes':>6} {'deliveries':>10} {'deliv/s':>8} {'p50 ms':>7} "
            f"{'p99 ms':>7} {'max ms':>7} {'lost':>5} {'dup':>4} {'order':>5} "
            f"{'client CPU':>10} {'server CPU':>10} {'REST p50/p99':>13} {'commit→rx p50/p99':>18}"
        )
        for r in rows:
            print(
                f"{r['rate']:>9} {r['writes']:>6} {r['count']:>10} "
                f"{r['count'] / r['secs']:>8.0f} {r['p50']:>7.1f} {r['p99']:>7.1f} "
                f"{r['max']:>7.1f} {r['lost']:>5} {r['dup']:>4} {r['disorder']:>5} "
                f"{r['client_cpu'] * 100:>9.0f}% {r['server_cpu'] * 100:>9.0f}% "
                f"{r['rest50']:>6.1f}/{r['rest99']:<6.1f} {r['c50']:>9.1f}/{r['c99']:<8.1f}"
            )
        ok = [r for r in rows if r["p99"] <= P99_LIMIT_MS and not r["lost"] and not r["dup"]]
        if ok:
            best = max(ok, key=lambda r: r["rate"])
            print(
                f"\nLargest rate with p99 ≤ {P99_LIMIT_MS:.0f} ms: {best['rate']} changes/s = "
                f"{best['count'] / best['secs']:.0f} deliveries/s"
            )
        print("CPU columns: share of one core over the phase (clients: all client processes).")
        print("REST: the writer's request time. commit→rx: event timestamp → client receipt.")
    finally:
        await stack.aclose()
        for c in clients:
            await c.finish()
        await asyncio.gather(*(s.stop() for s in servers))
        await drop_database(url)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--floor-server":
        import uvloop

        uvloop.run(floor_server_main(int(sys.argv[2]), sys.argv[3]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        import uvloop

        uvloop.run(client_main(sys.argv[2].split(","), sys.argv[3], int(sys.argv[4])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=10, help="changes/s of the main run")
    parser.add_argument("--duration", type=float, default=20, help="seconds of the main run")
    parser.add_argument("--step-duration", type=float, default=5)
    parser.add_argument("--max-rate", type=float, default=320)
    parser.add_argument(
        "--writer", choices=("rest", "direct", "floor"), default="rest",
        help="direct: commit through the unit of work in this process (realtime path only); "
        "floor: bare fan-out servers in place of BMS, the machine's floor for these clients",
    )  # fmt: skip
    parser.add_argument(
        "--sweep", type=lambda v: [int(x) for x in v.split(",")], metavar="N,N,…",
        help="PATCH latency with each subscriber count (e.g. 0,100,1000) at --rate for "
        "--duration, instead of the fan-out run",
    )  # fmt: skip
    args = parser.parse_args()
    asyncio.run(patch_sweep(args) if args.sweep else coordinator(args))


if __name__ == "__main__":
    main()
