"""Shared plumbing for the WebSocket benchmarks: a scratch database, servers, tokens.

Needs PostgreSQL (BMS_BENCH_POSTGRES_URL) and Redis (BMS_BENCH_REDIS_URL); the database is
`bms_bench_<random>`, dropped at the end; Redis channels get a namespace of their own.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from db import migrate

POSTGRES_URL = os.environ.get(
    "BMS_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("BMS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
BMS = str(Path(sys.executable).with_name("bms"))
SECRET_KEY = "bench-secret-key-" + "x" * 40
PASSWORD = "bench-password-not-secret"


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def create_database(*, migrated: bool = True) -> str:
    """A scratch `bms_bench_<random>` database; `migrated=False` leaves it empty (for a server
    from another source tree, which migrates it with its own `bms migrate`)."""
    name = f"bms_bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(_dsn(POSTGRES_URL))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    if migrated:
        await asyncio.to_thread(migrate.upgrade, url)
    return url


async def drop_database(url: str) -> None:
    conn = await asyncpg.connect(_dsn(POSTGRES_URL))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
    finally:
        await conn.close()


def server_env(url: str, namespace: str, data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": url,
        "REDIS_URL": REDIS_URL,
        "REDIS_NAMESPACE": namespace,
        "SECRET_KEY": SECRET_KEY,
        "BMS_ENV": "production",
        # `bms serve` refuses a production configuration without these (bms/environments.py).
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "COOKIE_SECURE": "true",
        "BMS_DATA_DIR": str(data_dir),
        "LOG_LEVEL": "warning",
    }


def raise_fd_limit() -> None:
    """Many sockets per process: lift the soft open-files limit to the hard one."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_cpu_secs(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ClientProc:
    """A benchmark client process (`script --client ARGS`) talking JSON lines over stdio."""

    def __init__(self, script: str, *args: str, limit: int = 2**20) -> None:
        self.args = [PYTHON, script, "--client", *args]
        self.limit = limit
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *self.args,
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=self.limit,
        )

    async def read(self) -> dict:
        assert self.proc is not None and self.proc.stdout is not None
        return json.loads(await asyncio.wait_for(self.proc.stdout.readline(), 600))

    def tell(self, message: object) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")

    def cpu_secs(self) -> float:
        assert self.proc is not None
        return process_cpu_secs(self.proc.pid)

    async def finish(self) -> None:
        if self.proc is not None and self.proc.stdin is not None:
            self.proc.stdin.close()
            await self.proc.wait()


class Server:
    """`bms serve` (or uvicorn with a chosen ws implementation) on a port of its own."""

    def __init__(self, env: dict[str, str], *, ws: str | None = None) -> None:
        self.env = env
        self.port = free_port()
        self.ws = ws
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/"

    async def start(self) -> None:
        if self.ws is None:
            cmd = [BMS, "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        else:  # same settings as `bms serve`, another WebSocket implementation
            cmd = [PYTHON, "-m", "uvicorn", "--factory", "api.app:create_app", "--port",
                   str(self.port), "--ws", self.ws, "--ws-per-message-deflate", "false",
                   "--log-level", "warning", "--no-server-header"]  # fmt: skip
        self.proc = await asyncio.create_subprocess_exec(
            *cmd, env=self.env, cwd=ROOT, preexec_fn=raise_fd_limit,
            stdout=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        async with httpx.AsyncClient(timeout=1) as http:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                assert self.proc.returncode is None, "server exited at startup"
                try:
                    if (await http.get(self.base + "/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise TimeoutError("server did not start")

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()

    def rss_kib(self) -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise LookupError("VmRSS")

    def cpu_secs(self) -> float:
        assert self.proc is not None
        return process_cpu_secs(self.proc.pid)


async def make_user_with_token(url: str, username: str, role: str) -> str:
    """Create a user directly through the unit of work and return a 1-hour access token."""
    from db.store import Store
    from domain.tokens import issue_token_pair
    from domain.users import create_user

    store = Store(url, pool_max=2)
    await store.connect()
    try:
        async with store.unit_of_work(actor_id=None) as uow:
            profile = await create_user(uow, username=username, password=PASSWORD, role=role)
            pair = await issue_token_pair(
                uow, user_id=profile["user"], secret_key=SECRET_KEY,
                access_ttl_secs=3600, refresh_ttl_secs=3600,
            )  # fmt: skip
    finally:
        await store.disconnect()
    return pair["access"]


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]
