"""RedisPubSubBackend against real Redis: fan-out, server restart, unsubscribe."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from uuid import uuid4

import pytest
from broadcaster import Broadcast, Event
from redis import asyncio as aioredis
from redis.exceptions import RedisError

from realtime.redis_backend import RedisPubSubBackend

REDIS_URL = os.environ.get("BMS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _channel(name: str = "ch") -> str:
    """Unique channel so parallel runs and other tests never collide."""
    return f"bmstest:{uuid4().hex}:{name}"


def _free_port() -> int:
    """Ask the OS for an unused TCP port for a private redis-server."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _wait_until(pred: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Bounded polling for conditions that have no event to await."""
    async with asyncio.timeout(timeout):
        while not await pred():
            await asyncio.sleep(0.02)


async def _start_redis(port: int, workdir: Path) -> asyncio.subprocess.Process:
    """Start redis-server on port and return once it answers PING."""
    proc = await asyncio.create_subprocess_exec(
        "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
        "--appendonly", "no", "--daemonize", "no", "--dir", str(workdir),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    client = aioredis.Redis(port=port, socket_connect_timeout=0.5, socket_timeout=0.5)

    async def pong() -> bool:
        assert proc.returncode is None, "redis-server exited during startup"
        try:
            return bool(await client.ping())
        except (RedisError, OSError):
            return False

    try:
        await _wait_until(pong)
    finally:
        await client.aclose()
    return proc


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """Terminate a private redis-server and reap it."""
    if proc.returncode is None:
        proc.terminate()
        async with asyncio.timeout(10):
            await proc.wait()


async def test_fan_out_to_two_broadcasts_in_order() -> None:
    ch = _channel()
    b1 = Broadcast(backend=RedisPubSubBackend(REDIS_URL))
    b2 = Broadcast(backend=RedisPubSubBackend(REDIS_URL))
    async with asyncio.timeout(20), b1, b2, b1.subscribe(ch) as s1, b2.subscribe(ch) as s2:
        sent = [f"m{i}" for i in range(100)]
        for m in sent:
            await b1.publish(ch, m)
        for sub in (s1, s2):
            got = [(await sub.get()) for _ in sent]
            assert got == [Event(ch, m) for m in sent]


async def test_publish_many_is_one_pipeline_in_order() -> None:
    """A burst of commits goes out in one round trip; subscribers see it in order."""
    ch = _channel()
    backend = RedisPubSubBackend(REDIS_URL)
    b1, b2 = Broadcast(backend=backend), Broadcast(backend=RedisPubSubBackend(REDIS_URL))
    async with asyncio.timeout(20), b1, b2, b2.subscribe(ch) as sub:
        sent = [f"m{i}" for i in range(50)]
        await backend.publish_many(ch, sent[:1])
        await backend.publish_many(ch, sent[1:])
        got = [(await sub.get()) for _ in sent]
        assert got == [Event(ch, m) for m in sent]


async def test_survives_redis_restart(tmp_path: Path) -> None:
    port = _free_port()
    url = f"redis://127.0.0.1:{port}/0"
    ch, ch_late = _channel("a"), _channel("late")
    procs = [await _start_redis(port, tmp_path)]
    backend = RedisPubSubBackend(url, reconnect_max_delay_secs=0.5)
    bc = Broadcast(backend=backend)
    try:
        async with asyncio.timeout(30), bc, bc.subscribe(ch) as sub:
            assert backend.is_connected
            await bc.publish(ch, "before")
            assert await sub.get() == Event(ch, "before")

            await _stop(procs[0])

            async def disconnected() -> bool:
                return not backend.is_connected

            await _wait_until(disconnected)
            started = time.monotonic()
            with pytest.raises((RedisError, OSError)):
                async with asyncio.timeout(5):
                    await bc.publish(ch, "lost")
            assert time.monotonic() - started < 5

            # Subscribing while Redis is down records the channel for the reconnect.
            async with bc.subscribe(ch_late) as late:
                procs.append(await _start_redis(port, tmp_path))
                assert await backend.wait_ready(10), "backend did not reconnect"
                assert backend.is_connected
                await bc.publish(ch, "after")
                await bc.publish(ch_late, "late")
                assert await sub.get() == Event(ch, "after")
                assert await late.get() == Event(ch_late, "late")
    finally:
        for proc in procs:
            await _stop(proc)


async def test_unsubscribe_stops_delivery() -> None:
    gone, kept = _channel("gone"), _channel("kept")
    backend = RedisPubSubBackend(REDIS_URL)
    raw = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        async with asyncio.timeout(20):
            await backend.connect()
            await backend.subscribe(gone)
            await backend.subscribe(kept)
            assert await raw.pubsub_numsub(gone) == [(gone, 1)]

            await backend.unsubscribe(gone)

            async def no_subscribers() -> bool:
                return await raw.pubsub_numsub(gone) == [(gone, 0)]

            await _wait_until(no_subscribers)
            # Same publisher connection, so "dropped" would arrive before "kept" if delivered.
            await backend.publish(gone, "dropped")
            await backend.publish(kept, "kept")
            assert await backend.next_published() == Event(kept, "kept")
    finally:
        await backend.disconnect()
        await raw.aclose()


def test_replies_are_parsed_by_hiredis() -> None:
    """The C parser is installed (redis[hiredis]): every process parses every write's event
    (docs/scaling.md, the fourth session, has what it saves)."""
    from redis.utils import HIREDIS_AVAILABLE

    assert HIREDIS_AVAILABLE


async def test_publishes_share_one_connection(tmp_path: Path) -> None:
    """Concurrent publishes take turns on one connection instead of opening a pool's worth."""
    port = _free_port()
    proc = await _start_redis(port, tmp_path)
    backend = RedisPubSubBackend(f"redis://127.0.0.1:{port}/0")
    probe = aioredis.Redis(port=port)
    try:
        async with asyncio.timeout(30), Broadcast(backend=backend) as bc:
            await asyncio.gather(*(bc.publish(_channel(), str(n)) for n in range(20)))
            clients = (await probe.info("clients"))["connected_clients"]
            assert clients == 3  # the subscriber, the publisher and this probe
    finally:
        await probe.aclose()
        await _stop(proc)
