"""The Redis stream broker: acknowledgement, reclaim, bounded length, delayed retries."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis import asyncio as aioredis
from taskiq import AckableMessage
from taskiq.message import BrokerMessage

from tasks.broker import XREAD_BLOCK_MS, BackoffRetryMiddleware, StreamBroker
from tests.conftest import REDIS_URL


@pytest.fixture(params=[True, False], ids=["batched", "one-by-one"])
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[StreamBroker]:
    """Both command paths: batched per loop turn (FAST_PATHS) and one round trip each."""
    made = StreamBroker(
        REDIS_URL,
        namespace=f"bmstest:{uuid.uuid4().hex[:12]}",
        maxlen=10,
        reclaim_idle_secs=0.2,
        batch=request.param,
    )
    made.is_worker_process = True
    await made.startup()
    try:
        yield made
    finally:
        async with aioredis.Redis(connection_pool=made.connection_pool) as conn:
            await conn.delete(made.queue_name, made.delayed_key)
        await made.shutdown()


def _message(data: bytes = b"x", **labels: Any) -> BrokerMessage:
    return BrokerMessage(task_id=uuid.uuid4().hex, task_name="t", message=data, labels=labels)


async def _next(listener: AsyncIterator[AckableMessage], timeout: float = 5) -> AckableMessage:
    return await asyncio.wait_for(anext(listener), timeout)


def test_blocking_read_fits_inside_socket_timeout() -> None:
    """redis-py 8 defaults to a 5 s socket timeout; XREADGROUP BLOCK must end well before ours."""
    made = StreamBroker(REDIS_URL, namespace="bmstest:x", maxlen=10, reclaim_idle_secs=1)
    timeout = made.connection_pool.connection_kwargs["socket_timeout"]
    assert timeout is not None and timeout > XREAD_BLOCK_MS / 1000 + 5


async def test_ack_and_reclaim_from_dead_consumer(broker: StreamBroker) -> None:
    await broker.kick(_message(b"orphan"))
    async with aioredis.Redis(connection_pool=broker.connection_pool) as conn:
        # A consumer reads the message and dies without acknowledging it.
        got = await conn.xreadgroup(
            broker.consumer_group_name, "dead-worker", {broker.queue_name: ">"}, count=1
        )
        assert got and got[0][1][0][1][b"data"] == b"orphan"
        listener = broker.listen()
        reclaimed = await _next(listener)
        assert reclaimed.data == b"orphan"
        await reclaimed.ack()
        pending = await conn.xpending(broker.queue_name, broker.consumer_group_name)
        assert pending["pending"] == 0
        await listener.aclose()


async def test_message_that_keeps_killing_workers_is_dead_lettered(broker: StreamBroker) -> None:
    from tasks.broker import MAX_DELIVERIES

    await broker.kick(_message(b"poison"))
    async with aioredis.Redis(connection_pool=broker.connection_pool) as conn:
        await conn.xreadgroup(broker.consumer_group_name, "w0", {broker.queue_name: ">"})
        for n in range(1, MAX_DELIVERIES):  # each claimant "dies" in turn
            await conn.xclaim(
                broker.queue_name, broker.consumer_group_name, f"w{n}", 0,
                [(await conn.xrange(broker.queue_name))[0][0]],
            )  # fmt: skip
        listener = broker.listen()
        await asyncio.sleep(0.25)  # idle past the reclaim threshold
        with pytest.raises(TimeoutError):
            await _next(listener, timeout=1.5)
        await listener.aclose()
        dead = await conn.xrange(broker.dead_key)
        assert [fields[b"data"] for _, fields in dead] == [b"poison"]
        assert (await conn.xpending(broker.queue_name, broker.consumer_group_name))["pending"] == 0
        await conn.delete(broker.dead_key)


async def test_stream_length_is_bounded(broker: StreamBroker) -> None:
    for i in range(300):
        await broker.kick(_message(str(i).encode()))
    async with aioredis.Redis(connection_pool=broker.connection_pool) as conn:
        assert await conn.xlen(broker.queue_name) < 300  # MAXLEN ~ trims whole nodes


async def test_delayed_kick_waits_then_arrives(broker: StreamBroker) -> None:
    loop = asyncio.get_running_loop()
    kicked_at = loop.time()
    await broker.kick(_message(b"later", delay=0.3))
    async with aioredis.Redis(connection_pool=broker.connection_pool) as conn:
        assert await conn.xlen(broker.queue_name) == 0
    listener = broker.listen()
    message = await _next(listener)
    assert message.data == b"later" and loop.time() - kicked_at >= 0.3
    await listener.aclose()


async def test_listener_survives_lost_stream(broker: StreamBroker) -> None:
    """Redis restarted without persistence: the group is gone and is created again."""
    listener = broker.listen()
    await broker.kick(_message(b"one"))
    await (await _next(listener)).ack()
    async with aioredis.Redis(connection_pool=broker.connection_pool) as conn:
        await conn.delete(broker.queue_name)
    await broker.kick(_message(b"two"))  # recreates the stream, without the group
    assert (await _next(listener)).data == b"two"
    await listener.aclose()


def test_backoff_grows_and_is_capped() -> None:
    middleware = BackoffRetryMiddleware(base_secs=1, max_secs=10, max_retries=5)
    delays = [middleware.delay_for(n) for n in range(1, 8)]
    assert 0.5 <= delays[0] <= 1 and 1 <= delays[1] <= 2 and 2 <= delays[2] <= 4
    assert all(5 <= d <= 10 for d in delays[4:])


async def test_listener_survives_redis_restart(tmp_path: Any) -> None:
    """A private redis-server goes away and comes back empty: the worker keeps listening."""
    from tests.realtime.test_redis_backend import _free_port, _start_redis, _stop

    port = _free_port()
    url = f"redis://127.0.0.1:{port}/0"
    server = await _start_redis(port, tmp_path)
    made = StreamBroker(url, namespace="bmstest:restart", maxlen=100, reclaim_idle_secs=1)
    made.is_worker_process = True
    try:
        await made.startup()
        listener = made.listen()
        await made.kick(_message(b"before"))
        await (await _next(listener)).ack()
        reading = asyncio.ensure_future(anext(listener))
        await asyncio.sleep(0.1)  # blocked in XREADGROUP when the server dies
        await _stop(server)
        server = await _start_redis(port, tmp_path)
        await made.kick(_message(b"after"))  # on a pooled connection to the dead server
        message = await asyncio.wait_for(reading, 10)
        assert message.data == b"after"
        await listener.aclose()
    finally:
        await made.shutdown()
        await _stop(server)
