"""Email delivery under real outages (#11): delivered, duplicated, missing, time to drain.

Each scenario gets its own PostgreSQL database, its own redis-server (no persistence: the
worst case) and an SMTP server (aiosmtpd, 0.2 s per message, 1 s in the SIGKILL scenario
so sends are in flight), then two `bms worker` and one `bms scheduler` (the sweep) with
default settings, and 40 emails:

- sigkill: both workers are SIGKILLed (and restarted) three times, each time with mail
  mid-send;
- smtp: the SMTP server answers 451 to everything for 60 s;
- redis: redis-server restarts (empty) after half the emails, the rest are queued at once;
- pg: every PostgreSQL connection of the database is cut three times while sending.

`--code DIR` runs the workers from another checkout (e.g. a `git worktree` of an older
commit) to measure "before"; the emails are queued by this checkout's code either way.

    .venv/bin/python -m bench.outages [--code DIR] [--only sigkill,smtp,redis,pg]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
import uuid
from email import message_from_bytes
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from sqlalchemy.engine import make_url

from bms.settings import load_settings
from db.store import Store
from db.tables import emails
from domain.emails import queue_email
from tasks.runtime import TaskRuntime
from tests.conftest import create_postgres_database, drop_postgres_database
from tests.realtime.test_redis_backend import _start_redis, _stop
from tests.tasks.conftest import free_port

EMAILS = 40
CAP_SECS = 200.0
SEND_SECS = 0.2
SIGKILL_SEND_SECS = 1.0  # slower sends: the killed worker has mail in flight
OUTAGE_SECS = 60.0
ROOT = Path(__file__).resolve().parents[1]


class Server:
    """Counts every accepted Message-ID; can refuse (451) for a while."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.refuse_until = 0.0
        self.send_secs = SEND_SECS
        self.arrived = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.arrived += 1
        await asyncio.sleep(self.send_secs)
        if time.monotonic() < self.refuse_until:
            return "451 4.3.0 Try again later"
        self.ids.append(str(message_from_bytes(envelope.content)["Message-ID"]))
        return "250 OK"


class Stack:
    """Database, redis-server, SMTP server and the bms processes of one scenario."""

    def __init__(self, code: Path, workdir: Path) -> None:
        self.code = code
        self.workdir = workdir
        self.redis_port = free_port()
        self.smtp = Server()
        self.children: dict[str, asyncio.subprocess.Process] = {}

    async def start(self) -> None:
        self.database_url = await create_postgres_database()
        self.redis = await _start_redis(self.redis_port, self.workdir)
        self.controller = Controller(self.smtp, hostname="127.0.0.1", port=free_port())
        self.controller.start()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("SMTP_", "EMAIL_"))},
            "BMS_ENV": "test",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "REDIS_NAMESPACE": f"bmsbench:{uuid.uuid4().hex[:8]}",
            "SECRET_KEY": "bench-secret-" + "x" * 32,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.controller.port),
            "SMTP_START_TLS": "false",
            "PYTHONPATH": str(self.code),
            "PYTHONUNBUFFERED": "1",
        }
        await self._run("migrate")
        settings = load_settings(
            database_url=self.database_url,
            redis_url=self.env["REDIS_URL"],
            redis_namespace=self.env["REDIS_NAMESPACE"],
            secret_key=self.env["SECRET_KEY"],
            bms_env="test",
        )
        self.store = Store(self.database_url)
        await self.store.connect()
        self.runtime = TaskRuntime(settings.task_settings(), self.store)
        await self.runtime.startup(worker=False)
        self.store.sink.enqueue = self.runtime.enqueue
        for name in ("worker-1", "worker-2", "scheduler"):
            await self.spawn(name)

    async def _run(self, command: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bms.cli", command, cwd=self.code, env=self.env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        assert await proc.wait() == 0, f"bms {command} failed"

    async def spawn(self, name: str) -> None:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
        self.children[name] = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bms.cli", name.split("-")[0], cwd=self.code, env=self.env,
            stdout=log, stderr=log,
        )  # fmt: skip

    async def kill(self, name: str) -> None:
        proc = self.children[name]
        proc.send_signal(signal.SIGKILL)
        await proc.wait()

    async def queue(self, count: int, start: int = 0) -> None:
        for n in range(start, start + count):
            async with self.store.unit_of_work(actor_id=None) as uow:
                await queue_email(
                    uow, to=[f"ops{n}@example.com"], subject=f"Bench {n}", body="x",
                    requested_by=None,
                )  # fmt: skip

    async def unfinished(self) -> int:
        async with self.store.connection() as conn:
            return int(
                await conn.fetch_val(
                    sa.select(sa.func.count()).where(emails.c.status.in_(("queued", "sending")))
                )
            )

    async def cut_database(self) -> None:
        dsn = make_url(self.database_url).set(drivername="postgresql")
        killer = await asyncpg.connect(dsn.render_as_string(hide_password=False))
        try:
            await killer.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await killer.close()

    async def stop(self) -> None:
        for proc in self.children.values():
            if proc.returncode is None:
                proc.terminate()
        for proc in self.children.values():
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
        await self.runtime.shutdown()
        await self.store.disconnect()
        self.controller.stop()
        await _stop(self.redis)
        await drop_postgres_database(self.database_url)


async def _sigkill(stack: Stack) -> None:
    stack.smtp.send_secs = SIGKILL_SEND_SECS
    await stack.queue(EMAILS)
    for kill in range(1, 4):  # both workers, each time some mail is mid-send
        while stack.smtp.arrived < kill * 5:  # no event to await across threads: poll
            await asyncio.sleep(0.02)
        for name in ("worker-1", "worker-2"):
            await stack.kill(name)
            await stack.spawn(name)


async def _smtp(stack: Stack) -> None:
    stack.smtp.refuse_until = time.monotonic() + OUTAGE_SECS
    await stack.queue(EMAILS)


async def _redis(stack: Stack) -> None:
    await stack.queue(EMAILS // 2)
    await _stop(stack.redis)
    stack.redis = await _start_redis(stack.redis_port, stack.workdir)
    await stack.queue(EMAILS // 2, start=EMAILS // 2)


async def _pg(stack: Stack) -> None:
    await stack.queue(EMAILS)
    for _ in range(3):
        await asyncio.sleep(1.0)  # the fault's schedule
        await stack.cut_database()


SCENARIOS = {"sigkill": _sigkill, "smtp": _smtp, "redis": _redis, "pg": _pg}


async def run(name: str, code: Path, workdir: Path) -> dict[str, Any]:
    stack = Stack(code, workdir)
    await stack.start()
    try:
        started = time.monotonic()
        await SCENARIOS[name](stack)
        while time.monotonic() - started < CAP_SECS:
            try:
                if await stack.unfinished() == 0:
                    break
            except Exception:  # the database was just cut: ask again
                pass
            await asyncio.sleep(0.2)
        drained = time.monotonic() - started
        received = stack.smtp.ids
        distinct = len(set(received))
        return {
            "delivered": distinct,
            "duplicated": len(received) - distinct,
            "missing": EMAILS - distinct,
            "drain_secs": round(drained, 1) if drained < CAP_SECS else None,
        }
    finally:
        await stack.stop()


async def main(args: argparse.Namespace) -> None:
    code = Path(args.code).resolve()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"code: {code}  emails per scenario: {EMAILS}")
    print(f"{'scenario':10} {'delivered':>9} {'duplicated':>10} {'missing':>7} {'drain s':>8}")
    for name in args.only.split(","):
        result = await run(name, code, workdir)
        drain = result["drain_secs"] if result["drain_secs"] is not None else f">{CAP_SECS:.0f}"
        print(
            f"{name:10} {result['delivered']:>9} {result['duplicated']:>10}"
            f" {result['missing']:>7} {drain:>8}",
            flush=True,
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", default=str(ROOT), help="checkout whose bms runs the workers")
    parser.add_argument("--only", default=",".join(SCENARIOS))
    parser.add_argument("--workdir", default="/tmp/bms-bench-outages")
    asyncio.run(main(parser.parse_args()))
