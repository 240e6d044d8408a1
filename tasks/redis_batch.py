"""Coalesce Redis commands issued in the same event-loop turn into one pipelined round trip.

Public redis-py API only (pipelines). `OneByOne` is the plain path (FAST_PATHS=0): the
same `run(add)` interface, one round trip per command.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

AddCommand = Callable[[Pipeline], Any]


class OneByOne:
    """Each command in its own round trip (FAST_PATHS=0): nothing waits for a loop turn."""

    def __init__(self, client: Redis) -> None:
        self.client = client

    async def run(self, add: AddCommand) -> Any:
        pipe = self.client.pipeline(transaction=False)
        add(pipe)
        (result,) = await pipe.execute()
        return result


class CommandBatcher:
    """Each caller still awaits its own command's result (an ack stays after the result save)."""

    def __init__(self, client: Redis) -> None:
        self.client = client
        self._pending: list[tuple[AddCommand, asyncio.Future[Any]]] = []
        self._scheduled = False

    async def run(self, add: AddCommand) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((add, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._start_flush)
        return await future

    def _start_flush(self) -> None:
        task = asyncio.ensure_future(self._flush())
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _flush(self) -> None:
        batch, self._pending, self._scheduled = self._pending, [], False
        try:
            pipe = self.client.pipeline(transaction=False)
            for add, _ in batch:
                add(pipe)
            results = await pipe.execute(raise_on_error=False)
        except BaseException as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)
