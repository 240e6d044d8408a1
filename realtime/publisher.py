"""Events out to the broadcaster after commit, and a relay for those that did not make it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

import sqlalchemy as sa
from broadcaster import Broadcast

from db.effects import CommittedEvent
from db.store import Store
from db.tables import events
from realtime.wire import encode

logger = logging.getLogger("bms.realtime.publisher")

PUBLISH_TIMEOUT_SECS = 1.0  # a commit never waits longer than this for Redis
COOLDOWN_SECS = 1.0  # after a failure, leave publishing to the relay for a while
RELAY_INTERVAL_SECS = 1.0
RELAY_MIN_AGE_SECS = 2.0  # younger unpublished events are probably being published right now
RELAY_BATCH = 500
MARK_DELAY_SECS = 0.2  # flag in batches, after the fan-out this process is starting now


PublishMany = Callable[[str, Sequence[str]], Awaitable[None]]


class Publisher:
    """Commit listener: publish each committed event; never fail or stall the write.

    `mark=False` (embedded mode): memory:// cannot lose a message and SQLite has one writer,
    so the published flag and the relay are skipped rather than add a second writer.
    """

    def __init__(
        self,
        store: Store,
        broadcast: Broadcast,
        channel: str,
        *,
        is_up: Callable[[], bool] = lambda: True,
        mark: bool = True,
        publish_many: PublishMany | None = None,
    ) -> None:
        self.store = store
        # Several events in one round trip (the Redis backend's pipeline), if the backend can.
        self.publish_many = publish_many
        self.mark = mark
        self.broadcast = broadcast
        self.channel = channel
        self.is_up = is_up
        self.published = 0
        self.failures = 0
        self._failed_at = -COOLDOWN_SECS
        self._to_mark: list[int] = []
        self._marking = asyncio.Event()
        self._marker: asyncio.Task[None] | None = None
        self._outbox: list[CommittedEvent] = []
        self._sending = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._marker = asyncio.create_task(self._mark_forever())
        self._sender = asyncio.create_task(self._send_forever())

    def submit(self, committed: Sequence[CommittedEvent]) -> None:
        """Publish soon, in commit order, without holding up the writer's response.

        Awaiting Redis in the request let this process's fan-out (started just before) run
        while the writer waited, so a write's latency grew with the sockets watching it.
        """
        self._outbox.extend(committed)
        self._sending.set()

    async def _send_forever(self) -> None:
        while not self._closing:
            await self._sending.wait()
            await self._send_pending()
        await self._send_pending()  # what was committed before the stop

    async def _send_pending(self) -> None:
        self._sending.clear()
        batch, self._outbox = self._outbox, []
        if batch:
            await self(batch)

    async def stop(self) -> None:
        if self._sender is not None:
            # Not cancelled: a cancel landing inside the Redis client can be swallowed there.
            # Each publish is bounded by PUBLISH_TIMEOUT_SECS, so this ends soon.
            self._closing = True
            self._sending.set()
            with contextlib.suppress(Exception):
                await self._sender
            self._sender = None
        if self._marker is not None:
            self._marker.cancel()
            with contextlib.suppress(BaseException):
                await self._marker
            self._marker = None
        with contextlib.suppress(Exception):
            await self._mark_pending()

    async def __call__(self, committed: Sequence[CommittedEvent]) -> None:
        """After commit: publish now if Redis looks up; otherwise the relay does it later."""
        if time.monotonic() - self._failed_at < COOLDOWN_SECS or not self.is_up():
            return
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_SECS):
                await self.publish(committed)
        except Exception as exc:
            self.failures += 1
            self._failed_at = time.monotonic()
            logger.warning("event publish failed (%r); the relay will retry", exc)
            return
        if self.mark:
            self._to_mark.extend(e.id for e in committed)
            self._marking.set()

    async def publish(self, committed: Sequence[CommittedEvent]) -> None:
        """Publish in id order; raises if the broadcaster is unreachable."""
        if self.publish_many is not None and len(committed) > 1:
            await self.publish_many(self.channel, [encode(event) for event in committed])
            self.published += len(committed)
            return
        for event in committed:
            await self.broadcast.publish(self.channel, encode(event))
            self.published += 1

    async def _mark_forever(self) -> None:
        """Flag published events in batches, off the request path and after the fan-out."""
        while True:
            await self._marking.wait()
            await asyncio.sleep(MARK_DELAY_SECS)
            self._marking.clear()
            try:
                await self._mark_pending()
            except Exception as exc:  # the relay republishes them: duplicates are dropped
                logger.warning("marking events published failed: %r", exc)

    async def _mark_pending(self) -> None:
        ids, self._to_mark = self._to_mark, []
        if ids:
            await mark_published(self.store, ids)


async def mark_published(store: Store, ids: Sequence[int]) -> None:
    async with store.connection() as conn:
        await conn.execute(events.update().where(events.c.id.in_(ids)).values(published=True))


async def relay_once(store: Store, publisher: Publisher, *, min_age_secs: float) -> int:
    """Publish committed events never marked published (crash, Redis down); return the count."""
    cutoff = store.clock() - timedelta(seconds=min_age_secs)
    total = 0
    while True:
        query = (
            sa.select(events)
            .where(sa.not_(events.c.published), events.c.created_at < cutoff)
            .order_by(events.c.id)
            .limit(RELAY_BATCH)
        )
        async with store.connection() as conn:
            rows = await conn.fetch_all(query)
        if not rows:
            return total
        batch = [CommittedEvent.from_row(row) for row in rows]
        async with asyncio.timeout(PUBLISH_TIMEOUT_SECS * 5):
            await publisher.publish(batch)
        await mark_published(store, [e.id for e in batch])
        total += len(batch)
        if len(rows) < RELAY_BATCH:
            return total


async def relay_forever(
    store: Store,
    publisher: Publisher,
    *,
    interval_secs: float = RELAY_INTERVAL_SECS,
    min_age_secs: float = RELAY_MIN_AGE_SECS,
) -> None:
    """Run `relay_once` every interval; failures are logged and retried next time."""
    while True:
        await asyncio.sleep(interval_secs)
        try:
            if count := await relay_once(store, publisher, min_age_secs=min_age_secs):
                logger.info("relay published %d late events", count)
        except Exception as exc:
            logger.warning("event relay failed (%r); will retry", exc)
