"""The realtime component: broadcaster, publisher, relay and hub, started with the app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from broadcaster import Broadcast
from redis import asyncio as aioredis
from starlette.applications import Starlette

from db.effects import CommittedEvent, Revocation, RevokeCredentials
from db.redis_options import redis_options
from db.store import Store
from realtime.config import RealtimeSettings
from realtime.hub import Hub, control_channel, events_channel, revocation_message
from realtime.publisher import Publisher, relay_forever
from realtime.redis_backend import RedisPubSubBackend


@dataclass
class Realtime:
    """Everything one process runs for realtime, as started by `running_realtime`."""

    settings: RealtimeSettings
    hub: Hub
    publisher: Publisher
    broadcast: Broadcast
    backend: RedisPubSubBackend | None

    async def on_commit(self, committed: Sequence[CommittedEvent]) -> None:
        """Effect-sink end for events: this process's sockets, then Redis, both after the
        writer's response (neither is awaited here)."""
        await self.hub.on_commit(committed)
        self.publisher.submit(committed)

    def revocation_epoch(self) -> int | None:
        """None while revocations from other processes may not arrive; else a number that
        changes when some may have been lost (`RedisPubSubBackend.live_epoch`). In-process
        pub/sub (embedded mode) is never down."""
        return self.backend.live_epoch if self.backend is not None else 0

    async def revoke(self, revocation: Revocation) -> None:
        """Effect-sink end for revocations: close those sockets on every process."""
        await self.hub.publish_revocation(
            revocation.user_id, credential_id=revocation.credential_id
        )


def make_broadcast(settings: RealtimeSettings) -> tuple[Broadcast, RedisPubSubBackend | None]:
    """Redis through our reconnecting backend; embedded mode uses `memory://`."""
    if settings.redis_url:
        backend = RedisPubSubBackend(settings.redis_url)
        return Broadcast(backend=backend), backend
    return Broadcast("memory://"), None


@asynccontextmanager
async def running_realtime(
    store: Store,
    settings: RealtimeSettings,
    *,
    poll_secs: float | None = None,
    relay_interval_secs: float | None = None,
) -> AsyncIterator[Realtime]:
    """Start the publisher, the relay and the hub; stop them in reverse order.

    The caller (a composition root) plugs `on_commit` and `revoke` of the yielded
    `Realtime` into the store's effect sink.
    """
    broadcast, backend = make_broadcast(settings)
    namespace = settings.channel_namespace
    await broadcast.connect()
    publisher = Publisher(
        store,
        broadcast,
        events_channel(namespace),
        is_up=(lambda: backend.is_connected) if backend is not None else (lambda: True),
        mark=backend is not None,
        publish_many=backend.publish_many if backend is not None else None,
    )
    hub_options: dict[str, Any] = {} if poll_secs is None else {"poll_secs": poll_secs}
    hub = Hub(
        store,
        broadcast,
        namespace=namespace,
        max_queued=settings.ws_queue_max_events,
        fast_paths=settings.fast_paths,
        **hub_options,
    )
    relay_options: dict[str, Any] = (
        {} if relay_interval_secs is None else {"interval_secs": relay_interval_secs}
    )
    relay: asyncio.Task[None] | None = None
    try:
        await hub.start()
        publisher.start()
        if backend is not None:  # embedded: memory:// cannot lose what was published
            relay = asyncio.create_task(relay_forever(store, publisher, **relay_options))
        yield Realtime(settings, hub, publisher, broadcast, backend)
    finally:
        if relay is not None:
            relay.cancel()
            with contextlib.suppress(BaseException):
                await relay
        await hub.stop()
        await publisher.stop()
        with contextlib.suppress(Exception):
            await broadcast.disconnect()


def realtime_component(
    settings: RealtimeSettings,
) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    """App component: `app.state.realtime` and `app.state.realtime_hub` while running."""

    @asynccontextmanager
    async def component(app: Starlette) -> AsyncIterator[None]:
        async with running_realtime(app.state.store, settings) as realtime:
            app.state.realtime = realtime
            app.state.realtime_hub = realtime.hub
            try:
                yield
            finally:
                app.state.realtime_hub = None

    return component


@asynccontextmanager
async def revocation_publisher(
    settings: RealtimeSettings,
) -> AsyncIterator[RevokeCredentials | None]:
    """The `revoke` end of an effect sink for a process without a hub (`bms user ...`): every
    server closes those sockets and forgets those credentials at once. None without Redis
    (embedded mode): the server finds out within AUTH_CACHE_SECS, its sockets at their next
    periodic check."""
    if not settings.redis_url:
        yield None
        return
    client = aioredis.Redis.from_url(
        settings.redis_url, socket_timeout=2, socket_connect_timeout=2, **redis_options()
    )
    channel = control_channel(settings.channel_namespace)

    async def revoke(revocation: Revocation) -> None:
        await client.publish(
            channel, revocation_message(revocation.user_id, revocation.credential_id)
        )

    try:
        yield revoke
    finally:
        await client.aclose()


async def publish_revocation(
    app_or_hub: Starlette | Hub, user_id: int, *, credential_id: str | None = None
) -> None:
    """Close a user's open sockets on every process (4401); call after deactivation/revocation.

    `credential_id` limits it to sockets opened with one session (key hash) or token (jti).
    """
    hub = app_or_hub if isinstance(app_or_hub, Hub) else app_or_hub.state.realtime_hub
    if hub is not None:
        await hub.publish_revocation(user_id, credential_id=credential_id)
