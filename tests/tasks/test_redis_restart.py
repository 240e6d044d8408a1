"""Issue #11 §2: the first enqueues after a Redis restart succeed on a fresh connection.

Each test runs its own redis-server on a free port (others share the machine's Redis).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis import asyncio as aioredis
from taskiq.message import BrokerMessage
from taskiq.result import TaskiqResult

from realtime.redis_backend import RedisPubSubBackend
from tasks.broker import ResultBackend, StreamBroker
from tests.realtime.test_redis_backend import _free_port, _start_redis, _stop
from tests.tasks.conftest import wait_until

POOLED_CONNECTIONS = 4


class PrivateRedis:
    """A redis-server of this test's own, restarted on the same port (data lost, as in a crash)."""

    def __init__(self, workdir: Path) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.proc: Any = None

    async def start(self) -> None:
        self.proc = await _start_redis(self.port, self.workdir)

    async def restart(self) -> None:
        await _stop(self.proc)
        await self.start()

    async def uptime_secs(self) -> int:
        async with aioredis.Redis(port=self.port) as client:
            return int((await client.info("server"))["uptime_in_seconds"])


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    await server.start()
    try:
        yield server
    finally:
        await _stop(server.proc)


def _message(data: bytes) -> BrokerMessage:
    return BrokerMessage(task_id=uuid.uuid4().hex, task_name="t", message=data, labels={})


async def _open_pooled_connections(pool: Any, count: int) -> None:
    """Leave `count` connected connections in the pool, as a busy process has."""
    taken = [await pool.get_connection() for _ in range(count)]
    for conn in taken:
        await conn.connect()
    for conn in taken:
        await pool.release(conn)


async def test_every_client_works_at_once_and_after_a_pause_following_a_restart(
    redis_server: PrivateRedis,
) -> None:
    broker = StreamBroker(
        redis_server.url, namespace="bmstest:restart", maxlen=100, reclaim_idle_secs=1
    )
    results = ResultBackend(redis_server.url, prefix="bmstest:restart:results")
    events = RedisPubSubBackend(redis_server.url)
    await broker.startup()
    await results.startup()
    await events.connect()
    try:
        await broker.kick(_message(b"before"))
        await events.publish("bmstest:restart:events", "before")
        await _open_pooled_connections(broker.connection_pool, POOLED_CONNECTIONS)
        await _open_pooled_connections(results.redis_pool, POOLED_CONNECTIONS)

        await redis_server.restart()  # every pooled connection is now stale
        await broker.kick(_message(b"at once"))
        await results.set_result("t1", TaskiqResult(is_err=False, return_value=1, execution_time=0))
        await events.publish("bmstest:restart:events", "at once")

        async def paused() -> bool:
            return await redis_server.uptime_secs() >= 1

        await wait_until(paused, timeout=10, every=0.2)
        for n in range(POOLED_CONNECTIONS):  # each may draw another stale connection
            await broker.kick(_message(f"after a pause {n}".encode()))
        async with aioredis.Redis(port=redis_server.port) as client:
            assert await client.xlen(broker.queue_name) == 1 + POOLED_CONNECTIONS
            assert await client.exists("bmstest:restart:results:t1")
    finally:
        await broker.shutdown()
        await results.shutdown()
        await events.disconnect()
