"""The demo data set: a broadcaster with three sites, their facilities and 30 people."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import sqlalchemy as sa

from bms.settings import Settings
from db.store import Store
from db.tables import users
from domain.actors import Actor, Role
from domain.locations import create_location
from domain.users import create_user

SITES = [
    ("Broadcasting House", "BH", "Portland Place, London W1A 1AA", "Europe/London"),
    ("MediaCity", "MCR", "Salford Quays, Manchester M50 2EQ", "Europe/London"),
    ("Pacific Quay", "PQ", "40 Pacific Quay, Glasgow G51 1DA", "Europe/London"),
]
FACILITIES = [
    ("Studio A", "studio"),
    ("Studio B", "studio"),
    ("Master Control Room", "control_room"),
    ("Transmitter North", "transmitter"),
    ("Playout Datacentre", "datacenter"),
]
PEOPLE = [
    ("Amelia", "Hughes"), ("Oliver", "Patel"), ("Isla", "Murray"), ("Jack", "Evans"),
    ("Sophie", "Clarke"), ("Harry", "Shah"), ("Grace", "Campbell"), ("Noah", "Walker"),
    ("Lily", "Robertson"), ("George", "Khan"), ("Freya", "Thomson"), ("Leo", "Wright"),
    ("Ava", "Begum"), ("Oscar", "Stewart"), ("Mia", "Green"), ("Charlie", "Ali"),
    ("Ella", "Scott"), ("Thomas", "Baker"), ("Emily", "Reid"), ("Alfie", "Turner"),
    ("Poppy", "Hussain"), ("Arthur", "Hill"), ("Evie", "Ross"), ("Henry", "Wood"),
    ("Ruby", "Morgan"), ("Jacob", "Young"), ("Chloe", "Paterson"), ("Finley", "Cooper"),
    ("Daisy", "Kaur"), ("Logan", "Mitchell"),
]  # fmt: skip
TITLES = {
    Role.ADMIN: "Systems Administrator",
    Role.MANAGER: "Operations Manager",
    Role.OPERATOR: "MCR Operator",
    Role.VIEWER: "Producer",
}
SYSTEM = Actor(id=0, username="demo-seed", role=Role.ADMIN, via="system")


def _role_for(index: int) -> Role:
    if index == 0:
        return Role.ADMIN
    if index < 5:
        return Role.MANAGER
    if index < 24:
        return Role.OPERATOR
    return Role.VIEWER


async def seed_demo(settings: Settings, *, announce: Callable[[str], object] = print) -> bool:
    """Load the demo data unless users exist already; print how to log in."""
    store = Store(settings.effective_database_url)
    await store.connect()
    try:
        async with store.connection() as conn:
            if await conn.fetch_val(sa.select(sa.func.count()).select_from(users)):
                announce("bms: demo data not loaded: the database already has users.")
                return False
        password = secrets.token_urlsafe(12)
        async with store.unit_of_work(actor_id=None) as uow:
            location_ids = []
            for name, code, address, tz in SITES:
                location = await create_location(
                    uow, SYSTEM, {"name": name, "code": code, "address": address, "timezone": tz}
                )
                location_ids.append(location["id"])
            for index, (first, last) in enumerate(PEOPLE):
                role = _role_for(index)
                username = "admin" if index == 0 else f"{first}.{last}".lower()
                await create_user(
                    uow,
                    username=username,
                    password=password,
                    role=role,
                    email=f"{username}@bms.example",
                    first_name=first,
                    last_name=last,
                    title=TITLES[role],
                    department="Technical Operations",
                    location_id=location_ids[index % len(location_ids)],
                )
            await _seed_operations(uow, location_ids)
    finally:
        await store.disconnect()
    announce("bms: demo data loaded: 3 sites, 15 facilities, 30 people.")
    announce("bms: log in as 'admin' (or e.g. 'oliver.patel' manager, 'sophie.clarke' operator)")
    announce(f"bms: demo password for every demo user: {password}")
    return True


async def _seed_operations(uow, location_ids: list[int]) -> None:  # type: ignore[no-untyped-def]
    """Facilities, incident types and a few tickets, through the domain rules."""
    from domain import facilities

    for location_id in location_ids:
        for name, kind in FACILITIES:
            await facilities.create_facility(
                uow, SYSTEM, {"name": name, "kind": kind, "location": location_id}
            )
