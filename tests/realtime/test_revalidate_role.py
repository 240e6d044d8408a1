"""The periodic credential re-check also closes a socket whose user's role changed, should
the revocation broadcast have been lost (issue #10 §3)."""

from __future__ import annotations

import uuid

from bms.settings import Settings
from db.tables import users
from domain.sessions import actor_for_session_key, create_session
from domain.users import create_user
from realtime.connection import CLOSE_UNAUTHORIZED
from tests.conftest import TEST_PASSWORD
from tests.realtime.helpers import FakeSocket, started


async def test_a_role_changed_behind_the_hubs_back_closes_on_the_recheck(
    rt_settings: Settings,
) -> None:
    async with started(rt_settings, poll_secs=3600) as rt:
        store = rt.hub.store
        async with store.unit_of_work(actor_id=None) as uow:
            profile = await create_user(
                uow, username=f"rr{uuid.uuid4().hex[:8]}", password=TEST_PASSWORD, role="manager"
            )
            key = await create_session(uow, user_id=profile["user"], ttl_secs=600)
        async with store.connection() as conn:
            manager = await actor_for_session_key(conn, key=key, now=store.clock())
        assert manager is not None
        sock = FakeSocket(rt.hub, manager)
        assert await rt.hub.close_revoked() == 0
        async with store.connection() as conn:  # no unit of work: nothing is broadcast
            await conn.execute(
                users.update().where(users.c.id == profile["user"]).values(role="operator")
            )
        assert await rt.hub.close_revoked() == 1
        await sock.wait_for(lambda: sock.close_code is not None)
        assert sock.close_code == CLOSE_UNAUTHORIZED
