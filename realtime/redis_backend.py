"""Redis pub/sub backend for ``broadcaster`` that reconnects instead of hanging silently."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from broadcaster import BroadcastBackend, Event
from redis import asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import TimeoutError as RedisTimeoutError

from db.redis_options import redis_options

logger = logging.getLogger("bms.realtime.redis")

_READ_POLL_SECS = 1.0  # per-read timeout; a timeout just means "no message yet"
_SUBSCRIBE_CONFIRM_SECS = 5.0  # how long subscribe() waits for Redis to acknowledge


class RedisPubSubBackend(BroadcastBackend):
    """One pub/sub connection per process, a reader task, and its own reconnect loop."""

    def __init__(self, url: str, *, reconnect_max_delay_secs: float = 5.0) -> None:
        """Only store settings: clients are created in ``connect`` on the running loop."""
        self._url = url
        self._max_delay = reconnect_max_delay_secs
        self._channels: set[str] = set()
        self._unconfirmed: set[str] = set()
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._ready = asyncio.Event()
        self._connected = False
        self._disconnections = 0
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._sub_client: aioredis.Redis | None = None
        self._pub_client: aioredis.Redis | None = None

    @property
    def is_connected(self) -> bool:
        """Whether the subscriber connection is currently up."""
        return self._connected

    @property
    def live_epoch(self) -> int | None:
        """None unless connected with every channel acknowledged; else how many times the
        connection was lost before. A change means messages may have been lost between."""
        return self._disconnections if self._ready.is_set() else None

    async def wait_ready(self, timeout: float) -> bool:  # noqa: ASYNC109 - bool, not raise
        """Wait until connected with every channel acknowledged; False on timeout (no sleeps)."""
        try:
            async with asyncio.timeout(timeout):
                await self._ready.wait()
        except TimeoutError:
            return False
        return True

    async def connect(self) -> None:
        """Start the reader; wait briefly for the first connection but never fail startup."""
        # Subscriber: no socket_timeout (reads pass their own), no health-check PING (it would
        # read concurrently with the reader), no redis-py retries (our loop backs off); TCP
        # keepalive (redis-py default) still detects a dead peer on an idle connection.
        self._sub_client = aioredis.Redis.from_url(
            self._url, decode_responses=True, socket_timeout=None, socket_connect_timeout=5,
            health_check_interval=0, retry=Retry(NoBackoff(), 0),
        )  # fmt: skip
        # Publishing must fail fast when Redis is down: callers (the relay) retry later. One
        # retry still takes a fresh connection when Redis restarted under the open one. One
        # connection, not a pool: publishes take turns on it (redis-py locks it), so a burst
        # of them no longer opens a connection each; pipelines (`publish_many`) use the pool.
        self._pub_client = aioredis.Redis.from_url(
            self._url, decode_responses=True, socket_timeout=2, socket_connect_timeout=2,
            single_connection_client=True, **redis_options(retries=1),
        )  # fmt: skip
        self._reader = asyncio.create_task(self._run(), name="bms-redis-pubsub-reader")
        if not await self.wait_ready(_SUBSCRIBE_CONFIRM_SECS):
            logger.warning("redis pub/sub not connected yet; continuing, will keep retrying")

    async def disconnect(self) -> None:
        """Stop the reader and close both connections."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        await self._close_pubsub()
        for client in (self._sub_client, self._pub_client):
            if client is not None:
                await client.aclose()

    async def subscribe(self, channel: str) -> None:
        """Record the channel and, if connected, subscribe and wait for Redis to acknowledge."""
        self._channels.add(channel)
        if (pubsub := self._pubsub) is None or not self._connected:
            return  # subscribed by the reader on (re)connect
        self._unconfirmed.add(channel)
        self._ready.clear()
        try:
            await pubsub.subscribe(channel)
        except Exception as exc:  # the reader notices too, reconnects and resubscribes
            logger.warning("redis subscribe %s failed (%r); will resubscribe", channel, exc)
            return
        if not await self.wait_ready(_SUBSCRIBE_CONFIRM_SECS):
            logger.warning("redis subscribe %s not acknowledged in time", channel)

    async def unsubscribe(self, channel: str) -> None:
        """Forget the channel (so late messages are dropped) and unsubscribe if connected."""
        self._channels.discard(channel)
        self._unconfirmed.discard(channel)
        self._mark_ready_if_confirmed()
        if (pubsub := self._pubsub) is not None and self._connected:
            with contextlib.suppress(Exception):  # a new connection won't resubscribe it anyway
                await pubsub.unsubscribe(channel)

    async def publish(self, channel: str, message: Any) -> None:
        """Publish on the separate client; raises (quickly) if Redis is unreachable."""
        if self._pub_client is None:
            raise RuntimeError("RedisPubSubBackend.publish() called before connect()")
        await self._pub_client.publish(channel, message)

    async def publish_many(self, channel: str, messages: Sequence[Any]) -> None:
        """Publish several messages, in order, in one round trip (a pipeline); raises if
        Redis is unreachable. A commit burst costs one round trip instead of one each."""
        if self._pub_client is None:
            raise RuntimeError("RedisPubSubBackend.publish_many() called before connect()")
        async with self._pub_client.pipeline(transaction=False) as pipe:
            for message in messages:
                pipe.publish(channel, message)
            await pipe.execute()

    async def next_published(self) -> Event:
        """Next message from any subscribed channel, in arrival order."""
        return await self._queue.get()

    def _mark_ready_if_confirmed(self) -> None:
        """Ready means connected and every subscription acknowledged."""
        if self._connected and not self._unconfirmed:
            self._ready.set()

    async def _close_pubsub(self) -> None:
        """Drop the current pub/sub connection without letting close errors escape."""
        pubsub, self._pubsub = self._pubsub, None
        if self._connected:
            self._disconnections += 1
        self._connected = False
        self._ready.clear()
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def _open(self) -> PubSub:
        """Open a fresh pub/sub connection and resubscribe every recorded channel."""
        assert self._sub_client is not None
        pubsub = self._sub_client.pubsub()
        self._pubsub = pubsub
        await pubsub.connect()
        # Set before snapshotting so a concurrent subscribe() either lands in the snapshot or
        # sends its own SUBSCRIBE on this connection.
        self._connected = True
        self._unconfirmed = set(self._channels)
        if self._unconfirmed:
            await pubsub.subscribe(*self._unconfirmed)
        self._mark_ready_if_confirmed()
        return pubsub

    async def _run(self) -> None:
        """Read forever: on any failure log, back off exponentially, reconnect, resubscribe."""
        delay, failed = 0.1, False
        while True:
            try:
                pubsub = await self._open()
                if failed:
                    logger.info("redis pub/sub reconnected (%d channels)", len(self._channels))
                delay, failed = 0.1, False
                await self._read(pubsub)
            except Exception as exc:
                await self._close_pubsub()
                log = logger.warning if not failed else logger.debug
                log("redis pub/sub down (%s: %s); retry in %.1fs", type(exc).__name__, exc, delay)
                failed = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_delay)

    async def _read(self, pubsub: PubSub) -> None:
        """Move messages to the queue and track subscribe acknowledgements."""
        while True:
            try:
                msg = await pubsub.get_message(timeout=_READ_POLL_SECS)
            except (TimeoutError, RedisTimeoutError):
                conn = pubsub.connection
                if conn is not None and conn.is_connected:
                    continue  # just "no message yet"
                raise  # the socket is gone: reconnect (and say so) in _run
            if msg is None:
                continue
            if msg["type"] == "message" and msg["channel"] in self._channels:
                await self._queue.put(Event(msg["channel"], msg["data"]))
            elif msg["type"] == "subscribe":
                self._unconfirmed.discard(msg["channel"])
                self._mark_ready_if_confirmed()
