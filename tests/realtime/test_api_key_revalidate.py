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


async def test_a_site_restricted_key_socket_gets_only_that_sites_events(
    rt_settings: Settings,
) -> None:
    from db.tables import events, facilities, locations
    from tests.realtime.helpers import emit

    async with started(rt_settings, poll_secs=3600) as rt:
        store = rt.hub.store
        now = store.clock()
        async with store.connection() as conn:
            site_ids = []
            for code in ("H", "T"):
                site_ids.append(
                    await conn.execute(
                        locations.insert().values(
                            name=f"Site {code} {uuid.uuid4().hex[:6]}", code=uuid.uuid4().hex[:8],
                            timezone="UTC", address="", created_at=now, updated_at=now,
                        )
                    )
                )  # fmt: skip
            studios = [
                await conn.execute(
                    facilities.insert().values(
                        name="Studio", location_id=site, kind="studio", created_at=now,
                        updated_at=now,
                    )
                )
                for site in site_ids
            ]  # fmt: skip
        async with store.unit_of_work(actor_id=None) as uow:
            profile = await create_user(
                uow, username=f"k{uuid.uuid4().hex[:8]}", password="x" * 12, role="viewer"
            )
            owner = Actor(profile["user"], "owner", Role.VIEWER)
            created = await create_api_key(uow, owner, {"name": "w", "location": site_ids[0]})
        async with store.connection() as conn:
            wall = await actor_for_api_key(conn, key=created["key"], now=store.clock())
        assert wall is not None and wall.site_facilities == frozenset({studios[0]})
        sock = FakeSocket(rt.hub, wall)
        await sock.subscribe(["incident-tickets", "facilities"])
        [here] = await emit(store, data={"id": 1, "facility": studios[0]})
        await emit(store, data={"id": 2, "facility": studios[1]})
        [nowhere] = await emit(store, data={"id": 3, "facility": None})
        [site_row] = await emit(
            store, "facilities", data={"id": studios[0], "location": site_ids[0]}
        )
        await emit(store, "facilities", data={"id": studios[1], "location": site_ids[1]})
        [last] = await emit(store, data={"id": 4, "facility": studios[0]})
        try:
            await sock.wait_for(lambda: last in sock.ids())
            assert sock.ids() == [here, nowhere, site_row, last]
        finally:
            await sock.close()
            async with store.connection() as conn:  # leave no fake rows for later tests
                await conn.execute(events.delete().where(events.c.id >= here))
                await conn.execute(facilities.delete().where(facilities.c.id.in_(studios)))
                await conn.execute(locations.delete().where(locations.c.id.in_(site_ids)))
