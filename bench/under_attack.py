"""Is the server still responsive under a login flood and pathological recurrence rules?

Starts one `bms serve` (embedded: SQLite, in-process pub/sub; real argon2 parameters) from a
source tree, then measures, first on a quiet server and then under attack:

- `/healthz` latency, probed every 20 ms;
- WebSocket delivery latency: a manager creates a location every 100 ms, a subscriber
  receives its `created` event (write, commit and fan-out); the write's own response time
  is printed beside it;
- the attack: 20 logins per second (right password) and, every 3 s, a burst of 5
  `POST /api/shifts/` with the impossible rule FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30.

    .venv/bin/python bench/under_attack.py                    # this checkout
    .venv/bin/python bench/under_attack.py --source /tmp/old  # another tree (e.g. git archive)
    .venv/bin/python bench/under_attack.py --postgres         # a scratch PostgreSQL database

`--postgres` creates `bms_bench_<random>` on BMS_BENCH_POSTGRES_URL (migrated by the served
tree's own `bms migrate`) and drops it afterwards; without it the server is embedded (SQLite,
one writer at a time).

The machine's load average is printed with the figures: on a shared machine they move.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.ws_common import create_database, drop_database, free_port

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench-password-not-secret"
IMPOSSIBLE = "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"
LOGINS_PER_SEC = 20
WRITES_PER_SEC = 10
HEALTH_EVERY_SECS = 0.02
RRULE_BURST = 5
RRULE_EVERY_SECS = 3.0
ATTACKS = {
    "both": frozenset({"logins", "rrules"}),
    "logins": frozenset({"logins"}),
    "rrules": frozenset({"rrules"}),
}
RUN_BMS = "import sys; from bms.cli import main; sys.exit(main())"


def bms_command(source: Path, *args: str) -> tuple[list[str], dict[str, str]]:
    """Run `bms` from `source` (first on sys.path) with the current interpreter."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env["PYTHONPATH"] = str(source)
    return [sys.executable, "-c", RUN_BMS, *args], env


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


def summary(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    if not ms:
        return "      -        -        -"
    return f"{statistics.median(ms):7.1f}  {percentile(ms, 99):7.1f}  {max(ms):7.1f}"


class Target:
    """A `bms serve` process and the accounts the load uses."""

    def __init__(self, source: Path, data_dir: Path, database_url: str = "") -> None:
        self.source = source
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env_extra = {
            "BMS_DATA_DIR": str(data_dir),
            "SECRET_KEY": "bench-secret-key-" + "x" * 40,
            "BMS_ENV": "test",
            "LOG_LEVEL": "warning",
            "SCHEDULER_EMBEDDED": "false",
            "DATABASE_URL": database_url,
            "REDIS_URL": "",
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.tokens: dict[str, str] = {}
        self.ids: dict[str, int] = {}

    def _run(self, *args: str, stdin: str | None = None) -> None:
        command, env = bms_command(self.source, *args)
        subprocess.run(
            command, env={**env, **self.env_extra}, input=(stdin or "").encode(), check=True,
            cwd=self.source, capture_output=True,
        )  # fmt: skip

    async def start(self) -> None:
        self._run("migrate")
        self._run("createuser", "--username", "chief", "--role", "admin", "--password-stdin",
                  stdin=PASSWORD + "\n")  # fmt: skip
        command, env = bms_command(self.source, "serve", "--port", str(self.port))
        self.log = Path(self.env_extra["BMS_DATA_DIR"]) / "serve.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                command, env={**env, **self.env_extra}, cwd=self.source,
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        async with httpx.AsyncClient(base_url=self.base, timeout=2) as http:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            else:
                raise SystemExit("bms serve did not start")
            await self._accounts(http)

    async def token(self, http: httpx.AsyncClient, username: str) -> str:
        response = await http.post(
            "/api/auth/token/", json={"username": username, "password": PASSWORD}
        )
        response.raise_for_status()
        return str(response.json()["access"])

    async def _accounts(self, http: httpx.AsyncClient) -> None:
        admin = {"Authorization": f"Bearer {await self.token(http, 'chief')}"}
        for name, role in (("boss", "manager"), ("crew", "operator"), ("flood", "viewer")):
            created = await http.post(
                "/api/profiles/",
                json={"username": name, "password": PASSWORD, "role": role},
                headers=admin,
            )
            created.raise_for_status()
            self.ids[name] = created.json()["user"]
        self.tokens["boss"] = await self.token(http, "boss")
        boss = {"Authorization": f"Bearer {self.tokens['boss']}"}
        site = await http.post(
            "/api/locations/", json={"name": "Bench", "code": "BN", "timezone": "UTC"},
            headers=boss,
        )  # fmt: skip
        site.raise_for_status()
        facility = await http.post(
            "/api/facilities/",
            json={"name": "MCR", "location": site.json()["id"], "kind": "control_room"},
            headers=boss,
        )
        facility.raise_for_status()
        self.ids["facility"] = facility.json()["id"]

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


async def paced(rate_per_sec: float, until: float, action: Callable[[], Awaitable[None]]) -> None:
    """Start `action` `rate_per_sec` times a second (not waiting for each) until `until`."""
    tasks: list[asyncio.Task[None]] = []
    started = time.perf_counter()
    n = 0
    while (now := time.perf_counter()) < until:
        tasks.append(asyncio.ensure_future(action()))
        n += 1
        await asyncio.sleep(max(0.0, started + n / rate_per_sec - now))
    await asyncio.gather(*tasks, return_exceptions=True)


class Phase:
    """One measured period: probes always, the attack when asked."""

    def __init__(self, target: Target, *, attack: frozenset[str], secs: float) -> None:
        self.target, self.attack, self.secs = target, attack, secs
        self.health: list[float] = []
        self.delivery: list[float] = []
        self.writes: list[float] = []
        self.logins: list[float] = []
        self.login_statuses: dict[int, int] = {}
        self.rrules: list[float] = []
        self.rrule_statuses: dict[int, int] = {}
        self.sent: dict[str, float] = {}

    async def run(self) -> None:
        until = time.perf_counter() + self.secs
        ws_url = f"ws://127.0.0.1:{self.target.port}/ws/"
        headers = {"Authorization": f"Bearer {self.target.tokens['boss']}"}
        async with (
            httpx.AsyncClient(base_url=self.target.base, timeout=60) as http,
            connect(ws_url, additional_headers=headers, compression=None) as ws,
        ):
            await ws.recv()  # welcome
            await ws.send(json.dumps({"type": "subscribe", "topics": ["locations"]}))
            while json.loads(await ws.recv())["type"] != "subscribed":
                pass
            jobs = [self._probe(until), self._write(http, until), self._receive(ws, until)]
            if "logins" in self.attack:
                jobs.append(self._login_flood(until))
            if "rrules" in self.attack:
                jobs.append(self._rrule_bursts(http, until))
            await asyncio.gather(*jobs)

    async def _probe(self, until: float) -> None:
        async with httpx.AsyncClient(base_url=self.target.base, timeout=60) as http:
            while time.perf_counter() < until:
                started = time.perf_counter()
                await http.get("/healthz")
                self.health.append(time.perf_counter() - started)
                await asyncio.sleep(HEALTH_EVERY_SECS)

    async def _write(self, http: httpx.AsyncClient, until: float) -> None:
        boss = {"Authorization": f"Bearer {self.target.tokens['boss']}"}
        seq = 0

        async def one() -> None:
            nonlocal seq
            seq += 1
            name = f"w{bool(self.attack):d}-{seq}"
            self.sent[name] = started = time.perf_counter()
            await http.post(
                "/api/locations/", json={"name": name, "code": name, "timezone": "UTC"},
                headers=boss,
            )  # fmt: skip
            self.writes.append(time.perf_counter() - started)

        await paced(WRITES_PER_SEC, until, one)

    async def _receive(self, ws: Any, until: float) -> None:
        while True:
            timeout = max(0.5, until - time.perf_counter() + 5)
            try:
                frame = json.loads(await asyncio.wait_for(ws.recv(), timeout))
            except TimeoutError:
                return
            if frame.get("type") == "event" and frame["data"]["name"] in self.sent:
                self.delivery.append(time.perf_counter() - self.sent[frame["data"]["name"]])
                if len(self.delivery) == len(self.sent) and time.perf_counter() >= until:
                    return

    async def _login_flood(self, until: float) -> None:
        async with httpx.AsyncClient(base_url=self.target.base, timeout=120) as http:

            async def one() -> None:
                started = time.perf_counter()
                response = await http.post(
                    "/api/auth/token/", json={"username": "flood", "password": PASSWORD}
                )
                self.logins.append(time.perf_counter() - started)
                code = response.status_code
                self.login_statuses[code] = self.login_statuses.get(code, 0) + 1

            await paced(LOGINS_PER_SEC, until, one)

    async def _rrule_bursts(self, http: httpx.AsyncClient, until: float) -> None:
        boss = {"Authorization": f"Bearer {self.target.tokens['boss']}"}
        body = {
            "user": self.target.ids["crew"], "facility": self.target.ids["facility"],
            "position": "MCR", "start": "2027-01-04T08:00:00Z", "end": "2027-01-04T16:00:00Z",
            "recurrence": IMPOSSIBLE,
        }  # fmt: skip

        async def one() -> None:
            started = time.perf_counter()
            response = await http.post("/api/shifts/", json=body, headers=boss)
            self.rrules.append(time.perf_counter() - started)
            code = response.status_code
            self.rrule_statuses[code] = self.rrule_statuses.get(code, 0) + 1

        async def burst() -> None:
            await asyncio.gather(*(one() for _ in range(RRULE_BURST)))

        await paced(1 / RRULE_EVERY_SECS, until, burst)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=ROOT, help="the BMS tree to serve")
    parser.add_argument("--secs", type=float, default=15.0, help="length of each phase")
    parser.add_argument("--postgres", action="store_true", help="a scratch PostgreSQL database")
    parser.add_argument(
        "--attack", choices=sorted(ATTACKS), default="both",
        help="what arrives in the attacked phase: the login flood, the RRULE bursts, or both",
    )  # fmt: skip
    args = parser.parse_args()
    load_before = os.getloadavg()
    database_url = await create_database(migrated=False) if args.postgres else ""
    with tempfile.TemporaryDirectory(prefix="bms-under-attack-") as data_dir:
        target = Target(args.source.resolve(), Path(data_dir), database_url)
        try:
            await target.start()
            quiet = Phase(target, attack=frozenset(), secs=args.secs)
            await quiet.run()
            attacked = Phase(target, attack=ATTACKS[args.attack], secs=args.secs)
            await attacked.run()
        finally:
            target.stop()
            if database_url:
                await drop_database(database_url)
            errors = [line for line in target.log.read_text().splitlines() if "Error" in line]
            if errors:
                print(f"server log: {len(errors)} error lines, the last:", *errors[-3:], sep="\n  ")
    load_after = os.getloadavg()
    loads = f"{load_before[0]:.1f}/{load_after[0]:.1f}"
    backend = "PostgreSQL" if args.postgres else "embedded SQLite"
    print(f"source: {args.source} ({backend}, attack: {args.attack})  "
          f"cores: {os.cpu_count()}  load (1 min): {loads}")  # fmt: skip
    print(f"{'ms':28} {'p50':>7}  {'p99':>7}  {'max':>7}")
    for phase, name in ((quiet, "quiet"), (attacked, "under attack")):
        print(f"{name + ': /healthz':28} {summary(phase.health)}   n={len(phase.health)}")
        print(f"{name + ': write (POST)':28} {summary(phase.writes)}   n={len(phase.writes)}")
        print(f"{name + ': ws delivery':28} {summary(phase.delivery)}   "
              f"n={len(phase.delivery)}/{len(phase.sent)}")  # fmt: skip
    print(f"{'attack: logins':28} {summary(attacked.logins)}   {attacked.login_statuses}")
    print(f"{'attack: impossible RRULEs':28} {summary(attacked.rrules)}   "
          f"{attacked.rrule_statuses}")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
