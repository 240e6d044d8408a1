"""REST benchmark: a table of list shapes, details, CSV and writes on a seeded PostgreSQL.

100,000 incident tickets plus realistic rows for every other list (bench/seed.py), behind
`bms serve --workers 2`, driven over loopback by a minimal keep-alive HTTP/1.1 client. Each
shape prints one line: req/s, p50/p99 and the server's CPU per request (user + system time of
the server workers and of their PostgreSQL backends, read from /proc before and after), the
figure that survives a machine shared with other work. Two floor lines, at the start and
at the end, send the same 404 to BMS and to a bare Starlette app on the same uvicorn
(bench/bare_server.py): how fast the machine was during the run (on a shared machine that
drifts by a third within minutes), and the fixed part of every BMS request. Never part of
the test run.

    .venv/bin/python bench/rest.py                        # the full table
    .venv/bin/python bench/rest.py --quick --reuse        # iterate: 10k tickets, 1 s a shape
    .venv/bin/python bench/rest.py --reuse --only status= csv

Needs PostgreSQL (BMS_BENCH_POSTGRES_URL) and Redis (BMS_BENCH_REDIS_URL). `--reuse` keeps the
seeded database (`bms_bench_seed_<tickets>`) for the next run.
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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
import httpx
import orjson

from bench.http_client import HttpConnection
from bench.seed import ADMIN, PASSWORD, asyncpg_dsn, drop_database, seeded_database

REDIS_URL = os.environ.get("BMS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
BMS = str(Path(sys.executable).with_name("bms"))
HOST = "127.0.0.1"
STARTUP_TIMEOUT_SECS = 120.0
TICKETS = "/api/incident-tickets/"
# Targets (server CPU ms per request, #15): per 50-row list page, detail, write.
LIST_CPU_MS, DETAIL_CPU_MS, WRITE_CPU_MS = 1.3, 0.5, 1.5
LIST_SPREAD = 1.5  # slowest list shape within this factor of the fastest
CSV_ROWS_PER_SEC = 50_000
CSV_RUNS = 5  # downloads of each size; the median is reported
FLOOR_PATH = "/api/no-such-resource/"  # 404: a request's fixed cost, no database


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


def rss_kib(pids: Sequence[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            continue
    return total


def child_pids(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def serving_pids(pid: int, workers: int) -> list[int]:
    """The processes that answer requests: uvicorn serves in its own process with one worker
    (its children are then helpers, e.g. the pure-Python offload process), in children with
    more."""
    return [pid] if workers == 1 else child_pids(pid)


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


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


# -- server ---------------------------------------------------------------------------------


def start_server(
    url: str, port: int, workers: int, log: Path, *, tree: Path | None = None
) -> subprocess.Popen:
    """`bms serve` on the seeded database; `tree`: run that source tree's code instead (its
    modules come first on PYTHONPATH; bench/paired.py compares two trees this way)."""
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"BMS_ENV", "BMS_DATA_DIR"}},
        **({"PYTHONPATH": str(tree)} if tree is not None else {}),
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


def start_bare_server(port: int, workers: int, log: Path) -> subprocess.Popen:
    """bench/bare_server.py on the same uvicorn settings: the machine's floor."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "bench.bare_server:app", "--host", HOST,
             "--port", str(port), "--workers", str(workers), "--loop", "uvloop",
             "--http", "httptools", "--log-level", "warning", "--no-access-log"],
            cwd=Path(__file__).resolve().parents[1],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def login(base_url: str) -> str:
    response = httpx.post(
        base_url + "/api/auth/token/", json={"username": ADMIN, "password": PASSWORD}, timeout=30
    )
    response.raise_for_status()
    return response.json()["access"]


# -- load -----------------------------------------------------------------------------------


@dataclass
class Scenario:
    """One line of the table: requests made by `make(n)` until the time or `limit` runs out."""

    name: str
    kind: str  # list | detail | write
    make: Callable[[int], tuple[str, str, bytes]]  # request number → (method, path, body)
    expect: int = 200
    rows: int = 50  # rows per page (lists): CPU is also shown per 50 rows
    limit: Callable[[], int] | None = None  # read when the scenario starts
    on_response: Callable[[bytes], None] | None = None
    # Run before the measurement, unmeasured: sets up the rows the shape consumes.
    prepare: Callable[[Bench], Awaitable[None]] | None = None


@dataclass
class Result:
    scenario: Scenario
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    server_ms: float  # server workers' CPU per request
    db_ms: float  # their PostgreSQL backends' CPU per request
    load: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def per_50_rows_ms(self) -> float:
        return self.server_ms * 50 / self.scenario.rows

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms) or [float("nan")]
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


@dataclass
class Bench:
    port: int
    token: str
    server_pids: list[int]
    url: str
    args: argparse.Namespace

    async def run(self, scenario: Scenario, *, duration: float, measure: bool = True) -> Result:
        numbers = itertools.count()
        latencies: list[float] = []
        errors: list[str] = []
        deadline = time.perf_counter() + duration
        limit = scenario.limit() if scenario.limit is not None else 1 << 62

        async def worker() -> None:
            conn = HttpConnection(self.port, self.token)
            await conn.open()
            try:
                while time.perf_counter() < deadline and (n := next(numbers)) < limit:
                    method, path, body = scenario.make(n)
                    started = time.perf_counter()
                    status, payload = await conn.request(method, path, body)
                    latencies.append((time.perf_counter() - started) * 1000)
                    if status != scenario.expect:
                        errors.append(f"{status} {payload[:200]!r}")
                    elif scenario.on_response is not None:
                        scenario.on_response(payload)
            finally:
                await conn.close()

        db_pids = await backend_pids(self.url) if measure and self.url else []
        before = cpu_seconds(self.server_pids), cpu_seconds(db_pids)
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(self.args.concurrency)))
        elapsed = time.perf_counter() - started
        after = cpu_seconds(self.server_pids), cpu_seconds(db_pids)
        count = max(1, len(latencies))
        if errors and measure:
            print(f"  {scenario.name}: {len(errors)} unexpected responses, first: {errors[0]}")
        return Result(
            scenario,
            len(latencies),
            len(errors),
            elapsed,
            latencies,
            (after[0] - before[0]) * 1000 / count,
            (after[1] - before[1]) * 1000 / count,
            load_average(),
        )

    async def measure(self, scenario: Scenario) -> Result:
        if scenario.prepare is not None:
            await scenario.prepare(self)
        # Writes warm up too: a fresh pool connection's first statements (connect, prepare)
        # are not what a write costs.
        await self.run(scenario, duration=self.args.warmup, measure=False)
        result = await self.run(scenario, duration=self.args.duration)
        if scenario.kind == "list":
            result.extra["rows"] = await self.rows_on_page(scenario)
        return result

    async def rows_on_page(self, scenario: Scenario) -> int:
        """How many rows the shape's page holds (a filter may match fewer than a page)."""
        conn = HttpConnection(self.port, self.token)
        await conn.open()
        try:
            method, path, body = scenario.make(0)
            _, payload = await conn.request(method, path, body)
        finally:
            await conn.close()
        return len(orjson.loads(payload)["results"])


# -- CSV ------------------------------------------------------------------------------------


async def download_csv(bench: Bench, path: str) -> Result:
    """Stream one CSV export, counting rows; sample the servers' RSS while it runs."""
    reader, writer = await asyncio.open_connection(HOST, bench.port)
    head = f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {bench.token}\r\n"
    rss_before = rss_kib(bench.server_pids)
    peak = rss_before
    db_pids = await backend_pids(bench.url)
    cpu_before = cpu_seconds(bench.server_pids), cpu_seconds(db_pids)
    started = time.perf_counter()
    writer.write(head.encode() + b"Connection: close\r\n\r\n")
    await reader.readuntil(b"\r\n\r\n")
    newlines = 0
    while True:  # chunked transfer coding
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        data = await reader.readexactly(size + 2)
        if size == 0:
            break
        newlines += data.count(b"\r\n") - 1
        peak = max(peak, rss_kib(bench.server_pids))
    elapsed = time.perf_counter() - started
    cpu_after = cpu_seconds(bench.server_pids), cpu_seconds(db_pids)
    writer.close()
    rows = max(1, newlines - 1)  # minus the header
    scenario = Scenario(f"csv {rows:,} rows", "csv", lambda n: ("GET", path, b""), rows=rows)
    return Result(
        scenario,
        1,
        0,
        elapsed,
        [elapsed * 1000],
        (cpu_after[0] - cpu_before[0]) * 1000,
        (cpu_after[1] - cpu_before[1]) * 1000,
        load_average(),
        {"rows_per_sec": rows / elapsed, "rss_growth_mib": (peak - rss_before) / 1024},
    )


# -- the shapes -----------------------------------------------------------------------------


@dataclass
class Seeded:
    """Ids and instants of the seeded rows the shapes point at."""

    ids: dict[str, list[int]]  # table → the ids present when the run started, sorted
    facility: int
    incident_type: int
    ticket_day: tuple[str, str]  # a one-day created_at window inside the tickets
    csv_after: dict[int, str]  # rows → created_after that selects about that many tickets
    now: str


async def inspect(url: str, csv_rows: Sequence[int]) -> Seeded:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        ids = {}
        for table in ("incident_tickets", "service_tickets", "shifts", "time_entries",
                      "time_off_requests", "scheduled_events"):  # fmt: skip
            # The rows present now: a reused database has gaps (rows deleted by earlier runs).
            present = await conn.fetch(f"SELECT id FROM {table} ORDER BY id")
            ids[table] = [row[0] for row in present]
        newest = await conn.fetchval("SELECT max(created_at) FROM incident_tickets")
        csv_after = {}
        for rows in csv_rows:
            csv_after[rows] = (
                await conn.fetchval(
                    "SELECT created_at FROM incident_tickets ORDER BY created_at DESC "
                    "OFFSET $1 LIMIT 1",
                    rows - 1,
                )
            ).isoformat()
        day_end = (
            newest
            - (newest - await conn.fetchval("SELECT min(created_at) FROM incident_tickets")) / 2
        )
        return Seeded(
            ids=ids,
            facility=await conn.fetchval("SELECT min(id) + 3 FROM facilities"),
            incident_type=await conn.fetchval("SELECT min(id) FROM incident_types"),
            ticket_day=((day_end.replace(hour=0, minute=0)).isoformat(), day_end.isoformat()),
            csv_after=csv_after,
            now=newest.isoformat(),
        )
    finally:
        await conn.close()


def list_shapes(seeded: Seeded) -> list[tuple[str, str]]:
    """(name, path) of every list shape: incident tickets first, then the other lists."""
    q = quote
    day_after, day_before = q(seeded.ticket_day[0]), q(seeded.ticket_day[1])
    fac = seeded.facility
    shapes = [
        ("status=open", "status=open"),
        ("status=open,acknowledged", "status=open,acknowledged"),
        ("status= 4 values", "status=open,acknowledged,in_progress,resolved"),
        ("priority=high,critical", "priority=high,critical"),
        ("search=sync (every row)", "search=sync"),
        ("search=transmitter 42 (1%)", "search=transmitter%2042%20"),
        ("search=INC-000042 (1 row, the oldest)", "search=INC-000042"),
        ("facility=", f"facility={fac}"),
        ("created_after+before (1 day)", f"created_after={day_after}&created_before={day_before}"),
        ("status=2&priority=2&-priority",
         "status=open,acknowledged&priority=high,critical&ordering=-priority"),
        ("facility+status+search", f"facility={fac}&status=closed&search=sync"),
        ("date range+status=closed&title",
         f"created_after={day_after}&created_before={day_before}&status=closed&ordering=title"),
        ("default order page 1", ""),
        ("default order page 40", "page=40"),
        ("status=closed page 40", "status=closed&page=40"),
    ]  # fmt: skip
    for name in ("number", "title", "priority", "status", "occurred_at", "created_at",
                 "updated_at", "id"):  # fmt: skip
        shapes += [(f"ordering={name}", f"ordering={name}"),
                   (f"ordering=-{name}", f"ordering=-{name}")]  # fmt: skip
    paths = [(f"tickets {name}", f"{TICKETS}?page_size=50&{query}") for name, query in shapes]
    paths += [(f"tickets page_size={size}", f"{TICKETS}?page_size={size}") for size in (20, 200)]
    now = q(seeded.now)
    paths += [
        ("shifts", "/api/shifts/?page_size=50"),
        ("shifts status=2&start_after", f"/api/shifts/?page_size=50&status=scheduled,confirmed"
                                        f"&start_after={now}"),
        ("shifts facility=&-start", f"/api/shifts/?page_size=50&facility={fac}&ordering=-start"),
        ("time-entries", "/api/time-entries/?page_size=50"),
        ("time-entries status=2", "/api/time-entries/?page_size=50&status=draft,submitted"),
        ("time-off-requests", "/api/time-off-requests/?page_size=50"),
        ("time-off status=pending", "/api/time-off-requests/?page_size=50&status=pending"),
        # Orderings with ties: a few requests per start date, a fifth of them per status.
        ("time-off start_date", "/api/time-off-requests/?page_size=50&ordering=start_date"),
        ("time-off -status", "/api/time-off-requests/?page_size=50&ordering=-status"),
        ("scheduled-events", "/api/scheduled-events/?page_size=50"),
        ("scheduled-events start_after", f"/api/scheduled-events/?page_size=50"
                                         f"&start_after={now}"),
        ("service-tickets", "/api/service-tickets/?page_size=50"),
        ("service-tickets status=2", "/api/service-tickets/?page_size=50&status=new,assigned"),
        ("service-tickets -due_date", "/api/service-tickets/?page_size=50&ordering=-due_date"),
    ]  # fmt: skip
    return paths


def scenarios(seeded: Seeded, pool: TicketPool) -> list[Scenario]:
    rng = random.Random(42)

    def pick(table: str) -> int:
        return rng.choice(seeded.ids[table])

    found: list[Scenario] = []
    for name, path in list_shapes(seeded):
        size = int(path.split("page_size=")[1].split("&")[0])
        found.append(Scenario(name, "list", lambda n, p=path: ("GET", p, b""), rows=size))
    details = [
        ("incident-tickets", "incident_tickets"),
        ("service-tickets", "service_tickets"),
        ("shifts", "shifts"),
        ("time-entries", "time_entries"),
        ("time-off-requests", "time_off_requests"),
        ("scheduled-events", "scheduled_events"),
    ]
    for path, table in details:
        found.append(
            Scenario(
                f"detail {path}",
                "detail",
                lambda n, p=path, t=table: ("GET", f"/api/{p}/{pick(t)}/", b""),
            )
        )
    found += write_scenarios(seeded, pick, pool)
    return found


@dataclass
class TicketPool:
    """Tickets the bench created, for the shapes that move their status or delete them.

    A write shape that needs tickets of its own creates them first, unmeasured, so each shape
    measures the same thing whether it runs alone (`--only PATCH`) or after the others; what
    the deletes leave is deleted at the end, so a reused database keeps its seeded rows.
    """

    body: bytes
    per_second: int = 500  # tickets a consuming shape gets per second of its duration
    fresh: list[int] = field(default_factory=list)  # created, still `open`
    moved: list[int] = field(default_factory=list)  # created, then acknowledged

    def alive(self) -> int:
        return len(self.fresh) + len(self.moved)

    def keep(self, payload: bytes) -> None:
        self.fresh.append(orjson.loads(payload)["id"])

    def create(self, n: int) -> tuple[str, str, bytes]:
        return "POST", TICKETS, self.body

    def status_move(self, n: int) -> tuple[str, str, bytes]:
        ticket = self.fresh.pop()
        self.moved.append(ticket)
        return "PATCH", f"{TICKETS}{ticket}/", b'{"status":"acknowledged"}'

    def delete(self, n: int) -> tuple[str, str, bytes]:
        ticket = self.moved.pop() if self.moved else self.fresh.pop()
        return "DELETE", f"{TICKETS}{ticket}/", b""

    async def fill(self, bench: Bench, have: Callable[[], int]) -> None:
        """Create tickets, unmeasured, until `have()` covers the shape's warm-up and duration."""
        missing = int(self.per_second * (bench.args.warmup + bench.args.duration)) - have()
        if missing > 0:
            scenario = Scenario("fill", "write", self.create, 201, limit=lambda: missing,
                                on_response=self.keep)  # fmt: skip
            await bench.run(scenario, duration=3600, measure=False)

    async def drain(self, bench: Bench) -> None:
        """Delete, unmeasured, the tickets the shapes left."""
        if self.alive():
            scenario = Scenario("drain", "write", self.delete, 204, limit=self.alive)
            await bench.run(scenario, duration=3600, measure=False)


def write_scenarios(seeded: Seeded, pick: Callable[[str], int], pool: TicketPool) -> list[Scenario]:
    """Create tickets, PATCH a field of seeded ones, move created ones' status, delete them.

    The seeded tickets keep their statuses and count, so a reused database stays the same.
    """

    def edit(n: int) -> tuple[str, str, bytes]:
        return (
            "PATCH",
            f"{TICKETS}{pick('incident_tickets')}/",
            orjson.dumps({"title": f"Bench incident, edit {n}"}),
        )

    fresh, alive = pool.fresh.__len__, pool.alive
    return [
        Scenario("create ticket", "write", pool.create, 201, on_response=pool.keep),
        Scenario("PATCH title", "write", edit),
        Scenario("PATCH status move", "write", pool.status_move, limit=fresh,
                 prepare=lambda bench: pool.fill(bench, fresh)),
        Scenario("DELETE ticket", "write", pool.delete, 204, limit=alive,
                 prepare=lambda bench: pool.fill(bench, alive)),
    ]  # fmt: skip


def ticket_pool(seeded: Seeded) -> TicketPool:
    body = orjson.dumps(
        {"title": "Bench write", "incident_type": seeded.incident_type,
         "facility": seeded.facility, "priority": "high"}
    )  # fmt: skip
    return TicketPool(body)


# -- report ---------------------------------------------------------------------------------


def list_budget_ms(rows: int) -> float:
    """A list page's target: LIST_CPU_MS per 50 rows, and a smaller page the budget of a
    50-row one (a request's fixed part, spread over 20 rows, is not a slow page)."""
    return LIST_CPU_MS * max(1.0, rows / 50)


def verdict(result: Result) -> str:
    kind = result.scenario.kind
    if result.errors:
        return "ERRORS"
    if kind == "floor":
        return "(floor)"
    if kind == "list":
        return "met" if result.server_ms <= list_budget_ms(result.scenario.rows) else "MISSED"
    if kind == "detail":
        return "met" if result.server_ms <= DETAIL_CPU_MS else "MISSED"
    if kind == "write":
        return "met" if result.server_ms <= WRITE_CPU_MS else "MISSED"
    return "met" if result.extra["rows_per_sec"] >= CSV_ROWS_PER_SEC else "MISSED"


def print_table(results: list[Result], args: argparse.Namespace) -> None:
    print(
        f"\n{args.tickets:,} incident tickets, {args.workers} server workers, concurrency "
        f"{args.concurrency}, {args.duration:g} s a shape, loopback, {os.cpu_count()} CPUs; "
        f"load average at start {args.load_before}"
        + (f"; reads: the median of {args.rounds} interleaved rounds" if args.rounds > 1 else "")
    )
    print(
        f"{'shape':<34} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'srv ms':>7} {'range':>5} "
        f"{'/50 rows':>8} {'rows':>4} {'db ms':>6} {'err':>4}  {'load 1/5/15':<17} target"
    )
    for r in results:
        rows = f"{r.per_50_rows_ms:>8.2f}" if r.scenario.kind == "list" else f"{'':>8}"
        held = f"{r.extra['rows']:>4.0f}" if "rows" in r.extra else f"{'':>4}"
        varied = f"{r.extra['srv_range']:>5.2f}" if "srv_range" in r.extra else f"{'':>5}"
        print(
            f"{r.scenario.name[:34]:<34} {r.rps:>7,.0f} {r.percentile(0.5):>7.1f} "
            f"{r.percentile(0.99):>7.1f} {r.server_ms:>7.2f} {varied} {rows} {held} "
            f"{r.db_ms:>6.2f} "
            f"{r.errors:>4}  {r.load:<17} {verdict(r)}"
        )
    for r in results:
        if r.scenario.kind == "csv":
            print(
                f"{r.scenario.name}: {r.extra['rows_per_sec']:,.0f} rows/s, server CPU "
                f"{r.server_ms * 1000 / r.scenario.rows:.1f} µs/row, peak RSS growth "
                f"{r.extra['rss_growth_mib']:.1f} MiB (target >= {CSV_ROWS_PER_SEC:,} rows/s, "
                f"flat RSS)  {verdict(r)}"
            )
    lists = [r for r in results if r.scenario.kind == "list" and not r.errors]
    # The target compares query shapes doing the same work: 50-row pages holding 50 rows.
    # The other two lines are for information: a page matching nothing is cheaper because
    # it holds nothing, and a 20-row page's fixed part spread over 20 rows is not a slow
    # shape; neither is a shape to make slower or faster.
    for label, group, judged in (
        (
            "list spread (50-row pages holding 50 rows)",
            [r for r in lists if r.scenario.rows == r.extra.get("rows") == 50],
            True,
        ),
        ("list spread, for information (50-row pages, empty ones too)",
         [r for r in lists if r.scenario.rows == 50], False),
        ("list spread, for information (page sizes 20-200 too)", lists, False),
    ):  # fmt: skip
        if not group:
            continue
        fast = min(group, key=lambda r: r.per_50_rows_ms)
        slow = max(group, key=lambda r: r.per_50_rows_ms)
        spread = slow.per_50_rows_ms / fast.per_50_rows_ms
        verdict_text = f" (target <= {LIST_SPREAD}x) " + (
            "met" if spread <= LIST_SPREAD else "MISSED"
        )
        print(
            f"{label}: slowest {slow.scenario.name!r} {slow.per_50_rows_ms:.2f} ms / fastest "
            f"{fast.scenario.name!r} {fast.per_50_rows_ms:.2f} ms = {spread:.2f}x"
            + (verdict_text if judged else "")
        )
    floors = {r.scenario.name: r.server_ms for r in results if r.scenario.kind == "floor"}
    if floors:
        bare = [v for k, v in floors.items() if "bare" in k]
        bms = [v for k, v in floors.items() if "BMS" in k]
        print(
            "floor (the same 404, ms CPU per request, start/end): bare Starlette "
            f"{' / '.join(f'{v:.3f}' for v in bare)}, BMS {' / '.join(f'{v:.3f}' for v in bms)}"
            " (the machine's speed during the run; BMS's fixed part per request is the gap)"
        )
    print(
        "srv ms: CPU of the server workers per request (target: list <= "
        f"{LIST_CPU_MS} per 50 rows, a smaller page <= {LIST_CPU_MS}, detail <= "
        f"{DETAIL_CPU_MS}, write <= {WRITE_CPU_MS}); "
        "db ms: their PostgreSQL backends; range: srv ms, slowest round - fastest."
    )


# -- main -----------------------------------------------------------------------------------


async def measure_floors(bench: Bench, bare: Bench, when: str) -> list[Result]:
    """The same 404 from the bare server and from BMS: the machine's speed right now, and
    the fixed part of every BMS request (middleware, authentication, routing)."""
    results = []
    for target, server in ((bare, "bare Starlette"), (bench, "BMS")):
        scenario = Scenario(
            f"floor: {server} 404 ({when})", "floor", lambda n: ("GET", FLOOR_PATH, b""), 404
        )
        results.append(await target.measure(scenario))
    return results


async def measure_all(bench: Bench, seeded: Seeded, bare: Bench) -> list[Result]:
    results = await measure_floors(bench, bare, "start")
    pool = ticket_pool(seeded)
    chosen = [
        scenario
        for scenario in scenarios(seeded, pool)
        if not (bench.args.only and not any(word in scenario.name for word in bench.args.only))
        and not (scenario.kind == "write" and bench.args.skip_writes)
    ]
    # Reads in interleaved rounds, so that the machine's drift over the run reaches every
    # shape alike (the spread compares shapes measured minutes apart); writes once, as they
    # consume the ticket pool.
    runs: dict[str, list[Result]] = {}
    for _ in range(bench.args.rounds):
        for scenario in chosen:
            if scenario.kind != "write":
                runs.setdefault(scenario.name, []).append(await _measured(bench, scenario))
    for scenario in chosen:
        if scenario.kind == "write":
            results.append(await _measured(bench, scenario))
        else:
            by_cpu = sorted(runs[scenario.name], key=lambda r: r.server_ms)
            results.append(by_cpu[len(by_cpu) // 2])  # the median round
            results[-1].extra["srv_range"] = by_cpu[-1].server_ms - by_cpu[0].server_ms
    await pool.drain(bench)
    results += await measure_floors(bench, bare, "end")
    if not bench.args.only or "csv" in bench.args.only:
        for rows in bench.args.csv_rows:
            after = quote(seeded.csv_after[rows])
            path = f"{TICKETS}?format=csv&created_after={after}"
            await download_csv(bench, path)  # warm
            # One download of 1,000 rows lasts ~20 ms: the median of five, not one sample.
            runs = sorted([await download_csv(bench, path) for _ in range(CSV_RUNS)],
                          key=lambda r: r.seconds)  # fmt: skip
            median = runs[len(runs) // 2]
            median.extra["rss_growth_mib"] = max(r.extra["rss_growth_mib"] for r in runs)
            results.append(median)
    return results


async def _measured(bench: Bench, scenario: Scenario) -> Result:
    result = await bench.measure(scenario)
    print(f"  {scenario.name}: {result.rps:,.0f} req/s, {result.server_ms:.2f} ms CPU", flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds a shape")
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds before each shape")
    parser.add_argument(
        "--rounds", type=int, default=1, help="rounds of the reads, interleaved; the median"
    )
    parser.add_argument("--csv-rows", type=int, nargs="*", default=[1000, 10_000])
    parser.add_argument("--quick", action="store_true", help="10k tickets, 1 s a shape")
    parser.add_argument("--reuse", action="store_true", help="keep/reuse the seeded database")
    parser.add_argument("--only", nargs="*", help="shapes whose name contains a word")
    parser.add_argument("--skip-writes", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep server and database running")
    args = parser.parse_args()
    if args.quick:
        args.tickets, args.duration, args.warmup = 10_000, 1.0, 0.3
    args.csv_rows = [min(rows, args.tickets) for rows in args.csv_rows]

    started = time.perf_counter()
    url, drop = asyncio.run(seeded_database(args.tickets, reuse=args.reuse))
    print(f"database ready in {time.perf_counter() - started:.1f}s ({url})")
    process = bare_process = None
    results: list[Result] = []
    try:
        port = free_port()
        base_url = f"http://{HOST}:{port}"
        log = Path(tempfile.mkdtemp(prefix="bms-bench-")) / "server.log"
        process = start_server(url, port, args.workers, log)
        bare_port = free_port()
        bare_process = start_bare_server(bare_port, args.workers, log.with_name("bare.log"))
        wait_ready(base_url, process, log)
        wait_ready(f"http://{HOST}:{bare_port}", bare_process, log.with_name("bare.log"))
        token = login(base_url)
        seeded = asyncio.run(inspect(url, args.csv_rows))
        args.load_before = load_average()
        bench = Bench(port, token, serving_pids(process.pid, args.workers), url, args)
        bare = Bench(bare_port, token, serving_pids(bare_process.pid, args.workers), "", args)
        results = asyncio.run(measure_all(bench, seeded, bare))
        print_table(results, args)
        if args.keep:
            print(f"kept: {base_url} (server pid {process.pid}), database {url}, token:\n{token}")
            process = None
            return 0
    finally:
        if process is not None:
            stop_server(process)
        if bare_process is not None:
            stop_server(bare_process)
        if drop and not args.keep:
            asyncio.run(drop_database(url))
    return 0 if all(verdict(r) == "met" for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
