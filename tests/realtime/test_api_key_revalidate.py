"""The periodic credential check also covers API key sockets (expiry, deletion)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from bms.settings import Settings
from db.tables import api_keys
from domain.actors import Actor, Role
from domain.api_keys import actor_for_api_key, create_api_key
from domain.users import create_user
from realtime.connection import CLOSE_UNAUTHORIZED
from tests.realtime.helpers import FakeSocket, started


async def test_expired_api_key_sockets_are_closed_by_the_periodic_check(
    rt_settings: Settings,
) -> None:
    async with started(rt_settings, poll_secs=3600) as rt:
        store = rt.hub.store
        async with store.unit_of_work(actor_id=None) as uow:
            profile = await create_user(
                uow, username=f"k{uuid.uuid4().hex[:8]}", password="x" * 12, role="viewer"
            )
            owner = Actor(profile["user"], "owner", Role.VIEWER)
            expiring = await create_api_key(
                uow, owner, {"name": "a", "expires_at": uow.now + timedelta(hours=1)}
            )
            kept = await create_api_key(uow, owner, {"name": "b"})
        async with store.connection() as conn:
            by_expiring = await actor_for_api_key(conn, key=expiring["key"], now=store.clock())
            by_kept = await actor_for_api_key(conn, key=kept["key"], now=store.clock())
        assert by_expiring and by_kept and by_expiring.read_only
        socks = [FakeSocket(rt.hub, by_expiring), FakeSocket(rt.hub, by_kept)]
        assert await rt.hub.close_revoked() == 0
        async with store.connection() as conn:
            await conn.execute(
                api_keys.update()
                .where(api_keys.c.id == expiring["id"])
                .values(expires_at=store.clock() - timedelta(seconds=1))
            )
        assert await rt.hub.close_revoked() == 1
        await socks[0].wait_for(lambda: socks[0].close_code is not None)
        assert socks[0].close_code == CLOSE_UNAUTHORIZED and socks[1].close_code is None
        await socks[1].close()
