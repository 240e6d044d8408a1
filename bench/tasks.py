"""Task queue benchmark: no-op and email tasks/s through one `bms worker`, and enqueue latency.

Needs PostgreSQL and Redis (BMS_TEST_POSTGRES_URL / BMS_TEST_REDIS_URL, defaults on 127.0.0.1).
Creates and drops its own database and Redis namespace.

    .venv/bin/python -m bench.tasks [--noop 20000] [--emails 1000] [--enqueues 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from redis import asyncio as aioredis

from bms.settings import Settings, load_settings
from db import migrate
from db.effects import QueuedTask
from db.store import Store
from domain import emails
from tasks.runtime import TaskRuntime
from tests.conftest import REDIS_URL, create_postgres_database, drop_postgres_database
from tests.tasks.conftest import free_port
from tests.tasks.processes import ROOT, process_env

WAIT_SECS = 120


class Sink:
    """aiosmtpd handler that only counts."""

    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        return "250 OK"


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _fmt_ms(samples: list[float]) -> str:
    ms = [s * 1000 for s in samples]
    return (
        f"p50 {statistics.median(ms):.3f} ms  p95 {_pct(ms, 0.95):.3f} ms  "
        f"p99 {_pct(ms, 0.99):.3f} ms  max {max(ms):.3f} ms"
    )


async def _consumed(client: aioredis.Redis, stream: str) -> tuple[int, int]:
    """(entries read by the group, entries pending) for the task stream."""
    groups = await client.xinfo_groups(stream)
    if not groups:
        return 0, 0
    group = groups[0]
    return int(group.get("entries-read") or 0), int(group["pending"])


async def _drain_with_worker(settings: Settings, total: int, concurrency: int) -> float:
    """Start one worker on a pre-filled stream; seconds from its first read to the last ack."""
    env = process_env(settings, worker_concurrency=concurrency)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bms.cli", "worker", "--concurrency", str(concurrency),
        cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    client = aioredis.Redis.from_url(settings.redis_url)
    stream = f"{settings.channel_namespace}:tasks"
    try:
        started = None
        deadline = time.monotonic() + WAIT_SECS
        while time.monotonic() < deadline:
            read, pending = await _consumed(client, stream)
            if read and started is None:
                started = time.perf_counter()
            if read >= total and pending == 0 and started is not None:
                return time.perf_counter() - started
            await asyncio.sleep(0.02)
        raise TimeoutError("worker did not drain the stream")
    finally:
        await client.aclose()
        proc.terminate()
        await proc.wait()


async def bench_noop(settings: Settings, store: Store, n: int, concurrency: int) -> None:
    runtime = TaskRuntime(settings.task_settings(), store)
    await runtime.startup(worker=False)
    try:
        await asyncio.gather(*(runtime.noop.kiq() for _ in range(n)))
    finally:
        await runtime.shutdown()
    secs = await _drain_with_worker(settings, n, concurrency)
    print(f"no-op tasks:  {n} in {secs:.2f} s = {n / secs:,.0f} tasks/s (one worker)")


async def bench_email(settings: Settings, store: Store, sink: Sink, n: int, conc: int) -> None:
    runtime = TaskRuntime(settings.task_settings(), store)
    await runtime.startup(worker=False)
    try:
        with store.sink.plugged(enqueue=runtime.enqueue):
            for i in range(n):
                async with store.unit_of_work(actor_id=None) as uow:
                    await emails.queue_email(
                        uow, to=["bench@example.com"], subject=f"bench {i}", body="x",
                        requested_by=None,
                    )  # fmt: skip
    finally:
        await runtime.shutdown()
    secs = await _drain_with_worker(settings, n, conc)
    print(
        f"email tasks:  {n} in {secs:.2f} s = {n / secs:,.0f} emails/s to local SMTP "
        f"(received {sink.count})"
    )


async def _write(store: Store, i: int) -> float:
    began = time.perf_counter()
    async with store.unit_of_work(actor_id=None) as uow:
        await emails.queue_email(
            uow, to=["x@example.com"], subject=f"e{i}", body="", requested_by=None
        )
    return time.perf_counter() - began


async def bench_enqueue(settings: Settings, store: Store, n: int) -> None:
    """What enqueueing costs a request: the after-commit hook, the XADD, a whole write."""
    runtime = TaskRuntime(settings.task_settings(), store)
    await runtime.startup(worker=False)
    try:
        kicks, hooks = [], []
        for i in range(n):
            began = time.perf_counter()
            await runtime.kick(QueuedTask(emails.SEND_EMAIL_TASK, (10_000_000 + i,)))
            kicks.append(time.perf_counter() - began)
            began = time.perf_counter()
            # What the request's after-commit does: the sink's enqueue end.
            await runtime.enqueue(QueuedTask(emails.SEND_EMAIL_TASK, (20_000_000 + i,)))
            hooks.append(time.perf_counter() - began)
            await runtime.drain()
        print(f"enqueue round trip (kiq -> XADD, awaited):      {_fmt_ms(kicks)}")
        print(f"after-commit hook in the request (background):  {_fmt_ms(hooks)}")
        # Interleaved so both variants see the same background noise; each enqueue is
        # drained (untimed) before the next write, so its CPU cost is not double counted.
        with_q, without_q = [], []
        for i in range(n // 5):
            with store.sink.plugged(enqueue=None):
                without_q.append(await _write(store, i))
            with store.sink.plugged(enqueue=runtime.enqueue):
                with_q.append(await _write(store, i))
            await runtime.drain()
        print(f"outbox write + commit without enqueue: {_fmt_ms(without_q)}")
        print(f"outbox write + commit with enqueue:    {_fmt_ms(with_q)}")
    finally:
        await runtime.shutdown()


async def main(args: argparse.Namespace) -> None:
    url = await create_postgres_database()
    sink = Sink()
    smtp = Controller(sink, hostname="127.0.0.1", port=free_port())
    smtp.start()
    try:
        await asyncio.to_thread(migrate.upgrade, url)

        def settings_for(run: str) -> Settings:
            return load_settings(
                bms_env="test", database_url=url, redis_url=REDIS_URL,
                redis_namespace=f"bmsbench:{uuid.uuid4().hex[:8]}:{run}",
                secret_key="bench-secret-" + "x" * 32, data_dir=Path("/tmp/bms-bench"),
                smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_start_tls=False,
            )  # fmt: skip

        store = Store(url)
        await store.connect()
        try:
            print(f"python {sys.version.split()[0]}, cpus {os.cpu_count()}, worker concurrency "
                  f"{args.concurrency}")  # fmt: skip
            await bench_enqueue(settings_for("enqueue"), store, args.enqueues)
            await bench_noop(settings_for("noop"), store, args.noop, args.concurrency)
            await bench_email(settings_for("email"), store, sink, args.emails, args.concurrency)
        finally:
            await store.disconnect()
            client = aioredis.Redis.from_url(REDIS_URL)
            keys = [k async for k in client.scan_iter(match="bmsbench:*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()
    finally:
        smtp.stop()
        await drop_postgres_database(url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noop", type=int, default=20_000)
    parser.add_argument("--emails", type=int, default=1_000)
    parser.add_argument("--enqueues", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=50)
    asyncio.run(main(parser.parse_args()))
