"""REST benchmark: 100,000 incident tickets on PostgreSQL behind `bms serve --workers 2`.

Measures requests/s and p50/p99 latency of the list, detail and PATCH endpoints at a fixed
concurrency, over loopback, with a minimal keep-alive HTTP/1.1 client (so the load generator
costs little of the machine's CPU). Never part of the test run.

    .venv/bin/python bench/rest.py [--tickets 100000] [--concurrency 32] [--requests 20000]

Needs PostgreSQL (BMS_BENCH_POSTGRES_URL, default postgresql://postgres@127.0.0.1:5432/postgres)
and Redis (BMS_BENCH_REDIS_URL, default redis://127.0.0.1:6379/0). The database is created as
`bms_bench_<random>` and dropped at the end (`--keep` keeps it and the server for profiling).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
import httpx
import orjson
from sqlalchemy.engine import make_url

from bench.http_client import HttpConnection
from db import migrate

POSTGRES_URL = os.environ.get(
    "BMS_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("BMS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
BMS = str(Path(sys.executable).with_name("bms"))
HOST = "127.0.0.1"
PASSWORD = "bench-password-not-secret"
STARTUP_TIMEOUT_SECS = 60.0
LIST_PATH = "/api/incident-tickets/?page_size=50&status=open&ordering=-priority"
# The same filter in the default order (newest first), which an index serves.
LIST_DEFAULT_PATH = "/api/incident-tickets/?page_size=50&status=open"
# Most incidents of a real system are closed; 5% are open (the list filter selects those).
STATUS_SQL = """CASE WHEN g % 20 = 0 THEN 'open' WHEN g % 20 = 1 THEN 'acknowledged'
    WHEN g % 20 = 2 THEN 'in_progress' WHEN g % 20 = 3 THEN 'resolved' ELSE 'closed' END"""
TARGETS = {"list": (1500, 50.0), "list-new": (1500, 50.0), "detail": (3000, None)}


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time of processes (Linux /proc), so figures survive a busy machine."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def child_pids(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


async def backend_pids(url: str) -> list[int]:
    """PostgreSQL backends serving the bench database (the servers' pooled connections)."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return [row["pid"] for row in rows]


# -- database -------------------------------------------------------------------------------


async def create_database() -> str:
    name = f"bms_bench_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(asyncpg_dsn(POSTGRES_URL))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


async def drop_database(url: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(POSTGRES_URL))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
    finally:
        await conn.close()


async def create_admin(url: str) -> None:
    """The admin the bench acts as, created through the domain (password policy and hash)."""
    from db.store import Store
    from domain.users import create_user

    store = Store(url)
    await store.connect()
    try:
        async with store.unit_of_work(actor_id=None) as uow:
            await create_user(uow, username="bench", password=PASSWORD, role="admin")
    finally:
        await store.disconnect()


async def seed_tickets(url: str, *, count: int, incident_type: int, facility: int) -> None:
    """Bulk-insert `count` tickets in one statement and take their numbers off the counter."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        reporter = await conn.fetchval("SELECT id FROM users WHERE username = 'bench'")
        await conn.execute(
            f"""
            INSERT INTO incident_tickets (
                number, title, description, incident_type_id, facility_id, priority, status,
                on_air_impact, reported_by, assigned_to, occurred_at, acknowledged_at,
                resolved_at, closed_at, resolution, created_at, updated_at)
            SELECT 'INC-' || lpad(g::text, 6, '0'), 'Bench incident ' || g,
                'Seeded by bench/rest.py', $1, $2,
                (ARRAY['low', 'medium', 'high', 'critical'])[1 + g % 4], {STATUS_SQL},
                g % 7 = 0, $3, NULL, t, NULL, NULL,
                CASE WHEN g % 20 >= 4 THEN t + interval '1 hour' END,
                CASE WHEN g % 20 >= 3 THEN 'Fixed.' ELSE '' END, t, t
            FROM generate_series(1, $4::int) AS g,
                LATERAL (SELECT now() - make_interval(mins => $4::int - g) AS t) AS stamp
            """,
            incident_type,
            facility,
            reporter,
            count,
        )
        await conn.execute(
            "INSERT INTO counters (name, value) VALUES ('incident_tickets', $1) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            count,
        )
        await conn.execute("VACUUM ANALYZE")  # a settled table, as autovacuum leaves it
    finally:
        await conn.close()


# -- server ---------------------------------------------------------------------------------


def start_server(url: str, port: int, workers: int, log: Path) -> subprocess.Popen:
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"BMS_ENV", "BMS_DATA_DIR"}},
        "DATABASE_URL": url,
        "REDIS_URL": REDIS_URL,
        "REDIS_NAMESPACE": f"bmsbench:{uuid.uuid4().hex[:8]}",
        "SECRET_KEY": "bench-secret-key-" + "x" * 40,
        "BMS_DATA_DIR": str(log.parent),
        "LOG_LEVEL": "WARNING",
        "ACCESS_TOKEN_TTL_SECS": "7200",
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [BMS, "serve", "--host", HOST, "--port", str(port), "--workers", str(workers)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_ready(base_url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited early:\n{log.read_text()}")
        try:
            if httpx.get(base_url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)  # polling a starting process: there is no event to wait on
    raise SystemExit(f"server did not become ready:\n{log.read_text()}")


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# -- load -----------------------------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    method: str
    make: Callable[[int], tuple[str, bytes]]  # request number → (path, body)
    expect: int = 200


@dataclass
class Result:
    name: str
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    cpu_ms: dict[str, float]  # per request: server, database, client

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def projected_rps(self) -> float:
        """Requests/s all CPUs could serve if nothing else ran (CPU per request is the limit)."""
        return (os.cpu_count() or 1) * 1000 / sum(self.cpu_ms.values())

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


async def run_load(
    scenario: Scenario,
    *,
    port: int,
    token: str,
    total: int,
    concurrency: int,
    server_pids: Sequence[int] = (),
    db_pids: Sequence[int] = (),
) -> Result:
    numbers = itertools.count()
    latencies: list[float] = []
    errors: list[str] = []

    async def worker() -> None:
        conn = HttpConnection(port, token)
        await conn.open()
        try:
            while (n := next(numbers)) < total:
                path, body = scenario.make(n)
                started = time.perf_counter()
                status, payload = await conn.request(scenario.method, path, body)
                latencies.append((time.perf_counter() - started) * 1000)
                if status != scenario.expect:
                    errors.append(f"{status} {payload[:200]!r}")
        finally:
            await conn.close()

    cpu_before = (cpu_seconds(server_pids), cpu_seconds(db_pids), time.process_time())
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    cpu_after = (cpu_seconds(server_pids), cpu_seconds(db_pids), time.process_time())
    cpu_ms = {
        name: (after - before) * 1000 / total
        for name, before, after in zip(
            ("server", "database", "client"), cpu_before, cpu_after, strict=True
        )
    }
    if errors:
        print(f"  {scenario.name}: {len(errors)} unexpected responses, first: {errors[0]}")
    return Result(scenario.name, total, len(errors), elapsed, latencies, cpu_ms)


def scenarios(ticket_count: int) -> list[Scenario]:
    rng = random.Random(42)

    def ticket() -> int:
        return rng.randint(1, ticket_count)

    return [
        Scenario("list", "GET", lambda n: (LIST_PATH, b"")),
        Scenario("list-new", "GET", lambda n: (LIST_DEFAULT_PATH, b"")),
        Scenario("detail", "GET", lambda n: (f"/api/incident-tickets/{ticket()}/", b"")),
        Scenario(
            "patch",
            "PATCH",
            lambda n: (
                f"/api/incident-tickets/{ticket()}/",
                orjson.dumps({"title": f"Bench incident, edit {n}"}),
            ),
        ),
    ]


def verdict(result: Result) -> str:
    min_rps, max_p99 = TARGETS.get(result.name, (None, None))
    checks = []
    if min_rps is not None:
        checks.append(result.rps >= min_rps)
    if max_p99 is not None:
        checks.append(result.percentile(0.99) <= max_p99)
    if result.errors:
        return "ERRORS"
    if not checks:
        return "-"
    return "met" if all(checks) else "MISSED"


def print_table(results: list[Result], args: argparse.Namespace) -> None:
    print(
        f"\n{args.tickets:,} incident tickets, {args.workers} server workers, "
        f"concurrency {args.concurrency}, loopback, {os.cpu_count()} CPUs"
    )
    print(f"load average before the run: {args.load_before}")
    header = f"{'endpoint':<8} {'requests':>9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}"
    cpu = f"{'CPU ms/req srv+db+cli':>22} {'proj. req/s':>11}"
    print(f"{header} {'errors':>7} {cpu}  target")
    for r in results:
        target = TARGETS.get(r.name, (None, None))
        wanted = ", ".join(
            part
            for part in (
                f">= {target[0]:,} req/s" if target[0] else "",
                f"p99 <= {target[1]:.0f} ms" if target[1] else "",
            )
            if part
        )
        print(
            f"{r.name:<8} {r.requests:>9,} {r.rps:>9,.0f} {r.percentile(0.5):>8.1f} "
            f"{r.percentile(0.99):>8.1f} {r.errors:>7} "
            f"{'{server:.2f}+{database:.2f}+{client:.2f}'.format(**r.cpu_ms):>22} "
            f"{r.projected_rps:>11,.0f}  {wanted or '-'} {verdict(r)}"
        )
    print(f"list: GET {LIST_PATH}\nlist-new: GET {LIST_DEFAULT_PATH}")
    print(
        "proj. req/s: CPUs x 1000 / CPU ms per request (server workers + their PostgreSQL "
        "backends + this client), i.e. the rate the CPU allows on an otherwise idle machine."
    )


# -- main -----------------------------------------------------------------------------------


def api(base_url: str, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=base_url, headers=headers, timeout=30)


def prepare(base_url: str) -> tuple[str, int, int]:
    """Token, incident type and facility, made through the API itself."""
    with api(base_url) as anonymous:
        response = anonymous.post(
            "/api/auth/token/", json={"username": "bench", "password": PASSWORD}
        )
        response.raise_for_status()
        token = response.json()["access"]
    with api(base_url, token) as admin:
        location = admin.post(
            "/api/locations/", json={"name": "Bench", "code": "B", "timezone": "Europe/London"}
        )
        location.raise_for_status()
        facility = admin.post(
            "/api/facilities/",
            json={"name": "Studio B", "location": location.json()["id"], "kind": "studio"},
        )
        facility.raise_for_status()
        kind = admin.post("/api/incident-types/", json={"name": "Bench outage"})
        kind.raise_for_status()
    return token, kind.json()["id"], facility.json()["id"]


async def measure(
    args: argparse.Namespace, port: int, token: str, server_pid: int, url: str
) -> list[Result]:
    results = []
    server_pids = child_pids(server_pid)
    for scenario in scenarios(args.tickets):
        if args.only and scenario.name not in args.only:
            continue
        total = args.requests if scenario.name != "patch" else max(1, args.requests // 4)
        warmup = min(total, 500)
        await run_load(scenario, port=port, token=token, total=warmup, concurrency=args.concurrency)
        print(f"  {scenario.name}: {total:,} requests ...", flush=True)
        results.append(
            await run_load(
                scenario,
                port=port,
                token=token,
                total=total,
                concurrency=args.concurrency,
                server_pids=server_pids,
                db_pids=await backend_pids(url),  # after the warm-up grew the pools
            )
        )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--requests", type=int, default=20_000, help="per read endpoint")
    parser.add_argument("--only", nargs="*", choices=["list", "list-new", "detail", "patch"])
    parser.add_argument("--keep", action="store_true", help="keep server and database running")
    args = parser.parse_args()

    url = asyncio.run(create_database())
    process = None
    try:
        started = time.perf_counter()
        migrate.upgrade(url)
        asyncio.run(create_admin(url))
        port = free_port()
        base_url = f"http://{HOST}:{port}"
        log = Path(tempfile.mkdtemp(prefix="bms-bench-")) / "server.log"
        process = start_server(url, port, args.workers, log)
        wait_ready(base_url, process, log)
        token, incident_type, facility = prepare(base_url)
        asyncio.run(
            seed_tickets(url, count=args.tickets, incident_type=incident_type, facility=facility)
        )
        print(f"seeded {args.tickets:,} tickets in {time.perf_counter() - started:.1f}s ({url})")
        args.load_before = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        results = asyncio.run(measure(args, port, token, process.pid, url))
        print_table(results, args)
        if args.keep:
            print(f"kept: {base_url} (server pid {process.pid}), database {url}, token:\n{token}")
            process = None
            return 0
    finally:
        if process is not None:
            stop_server(process)
        if not args.keep:
            asyncio.run(drop_database(url))
    return 0 if all(verdict(r) in {"met", "-"} for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
