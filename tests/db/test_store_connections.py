"""Store connections: queued in arrival order on PostgreSQL, re-entrant within a task."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from db.store import Store


@pytest.fixture
async def small_store(database_url: str) -> AsyncIterator[Store]:
    store = Store(database_url, pool_max=2)
    await store.connect()
    yield store
    await store.disconnect()


async def test_nested_connections_in_one_task_do_not_queue_again(small_store) -> None:
    async with small_store.connection() as outer, small_store.connection() as mid:
        async with small_store.unit_of_work(actor_id=None) as uow:
            assert await uow.conn.fetch_val(sa.select(sa.literal_column("1"))) == 1
        assert mid is outer  # one connection per task, as `databases` hands out
    async with asyncio.timeout(5):  # pool_max=2: a gate taken twice would block here
        async with small_store.connection() as a, small_store.connection() as b:
            assert await a.fetch_val(sa.select(sa.literal_column("2"))) == 2 and b is a


async def test_waiters_get_connections_in_arrival_order(small_store, backend) -> None:
    if backend != "postgres":
        pytest.skip("SQLite opens a connection per use; there is no pool to queue for")
    order: list[int] = []
    release = asyncio.Event()

    async def hold() -> None:
        async with small_store.connection():
            await release.wait()

    async def wait_turn(n: int) -> None:
        async with small_store.connection() as conn:
            order.append(n)
            await conn.fetch_val(sa.select(sa.literal_column(str(n))))

    holders = [asyncio.create_task(hold()) for _ in range(2)]
    await asyncio.sleep(0)  # a loop turn, no time: both holders take the two connections
    waiters = []
    for n in range(6):
        waiters.append(asyncio.create_task(wait_turn(n)))
        await asyncio.sleep(0)  # a loop turn: each waiter queues before the next starts
    # A latecomer arrives just as the first connection goes back to the pool, before the
    # waiter it wakes can run: asyncpg's own queue would hand it that connection first.
    pool_queue = small_store.database._backend._pool._queue
    put_back = pool_queue.put_nowait
    latecomers: list[asyncio.Task] = []

    def put_nowait(holder: object) -> None:
        if not latecomers:
            latecomers.append(asyncio.create_task(wait_turn(99)))
        put_back(holder)

    pool_queue.put_nowait = put_nowait
    release.set()
    async with asyncio.timeout(10):
        await asyncio.gather(*holders, *waiters)
        await asyncio.gather(*latecomers)
    assert order == [*range(6), 99]


async def test_sqlite_keeps_a_write_ahead_log(small_store, backend) -> None:
    """Readers never wait for a writer's commit (the rollback journal locked them out)."""
    if backend != "sqlite":
        pytest.skip("a SQLite journal setting")
    async with small_store.connection() as conn:
        assert await conn.fetch_val("PRAGMA journal_mode") == "wal"
