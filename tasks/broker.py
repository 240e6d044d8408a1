"""The Taskiq broker: Redis streams in production, in-process in embedded mode.

Private API relied on (tests/test_fast_path_contracts.py checks it): taskiq-redis's
`RedisStreamBroker._ack_generator(id, queue_name)`, `_declare_consumer_group()` and its
attributes (`connection_pool`, `block`, `count`, `idle_timeout`,
`unacknowledged_batch_size`, `maxlen`, `approximate`), `RedisAsyncResultBackend.redis_pool`,
`_task_name`, and taskiq's `InMemoryBroker._running_tasks`. These carry behaviour (delayed
retries, reclaim, reconnects, dead letters), so both paths use them; FAST_PATHS=0 turns off
only the speed-ups: batched kicks/acks (tasks/redis_batch.py) and the pipelined result write.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from taskiq import AckableMessage, AsyncBroker, InMemoryBroker, TaskiqMessage, TaskiqMiddleware
from taskiq.exceptions import NoResultError
from taskiq.kicker import AsyncKicker
from taskiq.message import BrokerMessage
from taskiq.result import TaskiqResult
from taskiq.serializers import ORJSONSerializer
from taskiq_redis import RedisAsyncResultBackend, RedisStreamBroker

from db.redis_options import redis_options
from tasks.config import TaskSettings
from tasks.logcontext import LogContextMiddleware
from tasks.redis_batch import CommandBatcher, OneByOne
from tasks.retry_later import RetryLater

log = structlog.get_logger("bms.tasks")

XREAD_BLOCK_MS = 1000
# redis-py 8 gives every socket a 5 s read timeout; a blocking XREADGROUP must finish well
# inside the timeout of the connection it runs on, so reads get their own, longer one.
SOCKET_TIMEOUT_SECS = XREAD_BLOCK_MS / 1000 + 10
SOCKET_CONNECT_TIMEOUT_SECS = 5.0
RESULT_TTL_SECS = 3600
RECONNECT_MAX_SECS = 5.0
# Deliveries of one message (its worker died each time) before it is dead-lettered.
MAX_DELIVERIES = 10
DELAY_LABEL = "delay"
RETRIES_LABEL = "_retries"

# Move due delayed messages into the stream atomically (several workers may run it at once);
# return the next due time so a read blocks no longer than that.
_PROMOTE_LUA = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 200)
for _, m in ipairs(due) do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'data', m)
  redis.call('ZREM', KEYS[1], m)
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if nxt[2] then return nxt[2] end
return -1
"""


def _delay_of(message: BrokerMessage) -> float:
    try:
        return float(message.labels.get(DELAY_LABEL) or 0)
    except (TypeError, ValueError):
        return 0.0


class StreamBroker(RedisStreamBroker):
    """Redis stream broker with delayed kicks, idle reclaim even when quiet, and reconnects."""

    def __init__(
        self,
        url: str,
        *,
        namespace: str,
        maxlen: int,
        reclaim_idle_secs: float,
        batch: bool = True,
    ) -> None:
        consumer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        super().__init__(
            url,
            queue_name=f"{namespace}:tasks",
            consumer_group_name=f"{namespace}:workers",
            consumer_name=consumer,
            consumer_id="0",  # a group created late still gets what was queued before it
            xread_block=XREAD_BLOCK_MS,
            maxlen=maxlen,
            approximate=True,
            idle_timeout=int(reclaim_idle_secs * 1000),
            xread_count=100,
            socket_timeout=SOCKET_TIMEOUT_SECS,
            socket_connect_timeout=SOCKET_CONNECT_TIMEOUT_SECS,
            **redis_options(),
        )
        self._maxlen = maxlen  # the parent keeps it as `int | None`
        self.delayed_key = f"{namespace}:tasks:delayed"
        self.dead_key = f"{namespace}:tasks:dead"
        self.reclaim_every_secs = max(0.5, reclaim_idle_secs / 4)
        # One client for the process: building a redis-py client per command costs more
        # than the command itself, and batching kicks and acks saves round trips.
        self.client = Redis(connection_pool=self.connection_pool)
        # FAST_PATHS=0: one round trip per kick and ack instead of one per loop turn.
        self.batch = CommandBatcher(self.client) if batch else OneByOne(self.client)
        self.promote_script = self.client.register_script(_PROMOTE_LUA)  # EVALSHA, not EVAL

    async def startup(self) -> None:
        """Only workers create the consumer group (from id 0, so nothing queued is missed)."""
        await AsyncBroker.startup(self)
        if self.is_worker_process:
            await self._declare_consumer_group()

    async def kick(self, message: BrokerMessage) -> None:
        """XADD now, or park in a sorted set until the retry's backoff has passed."""
        delay = _delay_of(message)
        data = message.message
        if delay <= 0:
            queue = message.labels.get("queue_name") or self.queue_name
            await self.batch.run(
                lambda p: p.xadd(
                    queue, {b"data": data}, maxlen=self.maxlen, approximate=self.approximate
                )
            )
            return
        await self.batch.run(lambda p: p.zadd(self.delayed_key, {data: time.time() + delay}))

    def _ack_generator(self, id: str, queue_name: str) -> Callable[[], Awaitable[None]]:
        async def ack() -> None:
            # Redis down: the unacknowledged message is reclaimed and run again (tasks are
            # idempotent), so a failed ack is one log line, not an exception nobody awaits.
            try:
                await self.batch.run(lambda p: p.xack(queue_name, self.consumer_group_name, id))
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                log.warning("task ack failed; it will be redelivered", id=str(id), error=str(exc))

        return ack

    async def _promote_due(self, conn: Redis) -> int:
        """Promote due retries; return how long the next read may block (ms)."""
        now = time.time()
        next_due = float(
            await self.promote_script(
                keys=[self.delayed_key, self.queue_name], args=[now, self._maxlen], client=conn
            )
        )
        if next_due < 0:
            return self.block
        return max(1, min(self.block, int((next_due - now) * 1000) + 1))

    def _ackable(self, msg_id: Any, fields: Any, stream: Any) -> AckableMessage:
        return AckableMessage(
            data=fields[b"data"], ack=self._ack_generator(id=msg_id, queue_name=stream)
        )

    async def _reclaim(self, conn: Redis) -> list[AckableMessage]:
        """Take over messages a dead worker read but never acknowledged."""
        claimed: list[AckableMessage] = []
        cursor = "0-0"
        while True:
            result = await conn.xautoclaim(
                self.queue_name,
                self.consumer_group_name,
                self.consumer_name,
                min_idle_time=self.idle_timeout,
                start_id=cursor,
                count=self.unacknowledged_batch_size,
            )
            cursor, messages = result[0], result[1]
            alive = await self._drop_poison(conn, [(mid, f) for mid, f in messages if f])
            claimed.extend(self._ackable(mid, fields, self.queue_name) for mid, fields in alive)
            if cursor in (b"0-0", "0-0") or len(claimed) >= self.unacknowledged_batch_size:
                return claimed

    async def _drop_poison(self, conn: Redis, messages: list[tuple[Any, Any]]) -> list[Any]:
        """A message that keeps killing its worker goes to a dead-letter stream, not round again."""
        if not messages:
            return messages
        pending = await conn.xpending_range(
            self.queue_name, self.consumer_group_name, messages[0][0], messages[-1][0],
            len(messages), consumername=self.consumer_name,
        )  # fmt: skip
        deliveries = {p["message_id"]: int(p["times_delivered"]) for p in pending}
        alive = []
        for mid, fields in messages:
            if deliveries.get(mid, 0) <= MAX_DELIVERIES:
                alive.append((mid, fields))
                continue
            log.error("task message redelivered too often; dead-lettered", id=str(mid))
            await conn.xadd(self.dead_key, fields, maxlen=self.maxlen, approximate=True)
            await conn.xack(self.queue_name, self.consumer_group_name, mid)
        return alive

    async def _read(self, conn: Redis, block_ms: int) -> list[AckableMessage]:
        fetched: Any = await conn.xreadgroup(  # RESP2: [(stream, [(id, fields), ...])]
            self.consumer_group_name,
            self.consumer_name,
            {self.queue_name: ">"},
            block=block_ms,
            count=self.count,
        )
        return [
            self._ackable(mid, fields, stream)
            for stream, messages in fetched or []
            for mid, fields in messages
        ]

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        """Read new messages, promote due retries and reclaim orphans; survive Redis restarts."""
        failures = 0
        last_reclaim = 0.0
        while True:
            try:
                async with Redis(connection_pool=self.connection_pool) as conn:
                    while True:
                        block_ms = await self._promote_due(conn)
                        batch: list[AckableMessage] = []
                        if time.monotonic() - last_reclaim >= self.reclaim_every_secs:
                            last_reclaim = time.monotonic()
                            batch = await self._reclaim(conn)
                        next_reclaim_ms = (last_reclaim + self.reclaim_every_secs) * 1000
                        block_ms = max(
                            1, min(block_ms, int(next_reclaim_ms - time.monotonic() * 1000))
                        )
                        batch.extend(await self._read(conn, block_ms))
                        failures = 0
                        for message in batch:
                            yield message
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                await self._declare_consumer_group()  # Redis lost its data: recreate the group
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                failures += 1
                wait = min(RECONNECT_MAX_SECS, 0.1 * 2**failures)
                log.warning("redis unavailable for tasks; retrying", error=str(exc), wait=wait)
                await asyncio.sleep(wait)

    async def shutdown(self) -> None:
        """Leave the consumer group if nothing is pending on this consumer."""
        if self.is_worker_process:
            try:
                async with Redis(connection_pool=self.connection_pool) as conn:
                    info = await conn.xpending_range(
                        self.queue_name, self.consumer_group_name, "-", "+", 1,
                        consumername=self.consumer_name,
                    )  # fmt: skip
                    if not info:
                        await conn.xgroup_delconsumer(
                            self.queue_name, self.consumer_group_name, self.consumer_name
                        )
            except Exception as exc:  # shutting down anyway
                log.debug("could not leave consumer group", error=str(exc))
        await self.client.aclose()
        await super().shutdown()


class ResultBackend(RedisAsyncResultBackend[Any]):
    """Results written through one client, pipelined with whatever else is in flight."""

    def __init__(self, url: str, *, prefix: str, batch: bool = True) -> None:
        super().__init__(
            url,
            result_ex_time=RESULT_TTL_SECS,
            prefix_str=prefix,
            serializer=ORJSONSerializer(),
            socket_connect_timeout=SOCKET_CONNECT_TIMEOUT_SECS,
            **redis_options(),
        )
        self.client = Redis(connection_pool=self.redis_pool)
        self.batch = CommandBatcher(self.client) if batch else None

    async def set_result(self, task_id: str, result: TaskiqResult[Any]) -> None:
        if self.batch is None:  # FAST_PATHS=0: taskiq-redis's own write
            await super().set_result(task_id, result)
            return
        name = self._task_name(task_id)
        value = self.serializer.dumpb(result.model_dump(mode="json"))
        await self.batch.run(lambda p: p.set(name=name, value=value, ex=RESULT_TTL_SECS))

    async def shutdown(self) -> None:
        await self.client.aclose()
        await super().shutdown()


class EmbeddedBroker(InMemoryBroker):
    """In-process broker for embedded mode; honours the retry delay with a timer."""

    async def kick(self, message: BrokerMessage) -> None:
        delay = _delay_of(message)
        if delay <= 0:
            await super().kick(message)
            return
        task = asyncio.create_task(self._kick_later(message, delay))
        self._running_tasks.add(task)
        task.add_done_callback(self._running_tasks.discard)

    async def _kick_later(self, message: BrokerMessage, delay: float) -> None:
        await asyncio.sleep(delay)
        await super().kick(message)


class BackoffRetryMiddleware(TaskiqMiddleware):
    """Retry a failed task with exponential backoff and jitter, up to `max_retries` times."""

    def __init__(self, *, base_secs: float, max_secs: float, max_retries: int) -> None:
        super().__init__()
        self.base_secs = base_secs
        self.max_secs = max_secs
        self.max_retries = max_retries

    def delay_for(self, retry: int) -> float:
        """Full jitter over an exponential ceiling: spreads retries of a shared failure."""
        ceiling = min(self.max_secs, self.base_secs * 2 ** (retry - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    async def on_error(
        self, message: TaskiqMessage, result: TaskiqResult[Any], exception: BaseException
    ) -> None:
        if isinstance(exception, NoResultError) or message.labels.get("retry") in (False, "False"):
            return
        retry = int(message.labels.get(RETRIES_LABEL, 0)) + 1
        limit = int(message.labels.get("max_retries", self.max_retries))
        if retry > limit:
            log.warning("task failed for good", task=message.task_name, id=message.task_id)
            return
        # An exception may know when retrying makes sense (e.g. a lease that must expire first).
        delay = max(self.delay_for(retry), float(getattr(exception, "retry_after_secs", 0) or 0))
        if not isinstance(exception, RetryLater):  # a RetryLater was logged where it was raised
            log.info("task failed; retrying", task=message.task_name, retry=retry, delay=delay)
        kicker: AsyncKicker[Any, Any] = (
            AsyncKicker(task_name=message.task_name, broker=self.broker, labels=message.labels)
            .with_task_id(message.task_id)
            .with_labels(**{RETRIES_LABEL: retry, DELAY_LABEL: delay})
        )
        await kicker.kiq(*message.args, **message.kwargs)
        result.error = NoResultError()


def make_broker(settings: TaskSettings) -> AsyncBroker:
    """Build (not start) the broker this process uses; tasks are registered separately."""
    broker: AsyncBroker
    if settings.redis_url:
        namespace = settings.channel_namespace
        broker = StreamBroker(
            settings.redis_url,
            namespace=namespace,
            maxlen=settings.task_stream_maxlen,
            reclaim_idle_secs=settings.task_reclaim_idle_secs,
            batch=settings.fast_paths,
        ).with_result_backend(
            ResultBackend(
                settings.redis_url, prefix=f"{namespace}:results", batch=settings.fast_paths
            )
        )
    else:
        broker = EmbeddedBroker(max_async_tasks=settings.worker_concurrency)
    broker.add_middlewares(
        LogContextMiddleware(),
        BackoffRetryMiddleware(
            base_secs=settings.task_retry_base_secs,
            max_secs=settings.task_retry_max_secs,
            max_retries=settings.task_max_retries,
        ),
    )
    return broker
