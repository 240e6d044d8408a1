"""The demo data set: a broadcaster with three sites, their facilities and 30 people."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta

import sqlalchemy as sa

from bms.settings import Settings
from db.store import Store
from db.tables import locations, users
from db.uow import UnitOfWork
from domain import (
    facilities,
    incident_tickets,
    incident_types,
    scheduled_events,
    service_tickets,
    shifts,
)
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
INCIDENT_TYPES = [
    ("Off air", "critical", "#d32f2f"),
    ("Signal degradation", "high", "#f57c00"),
    ("Equipment fault", "medium", "#fbc02d"),
    ("Network", "medium", "#1976d2"),
    ("Software", "low", "#7b1fa2"),
]
INCIDENTS = [
    ("Transmitter North lost carrier", "Off air", True),
    ("Audio drift on Studio A return feed", "Signal degradation", True),
    ("Playout server fan failure", "Equipment fault", False),
    ("Packet loss on contribution link", "Network", False),
    ("Subtitles missing on channel 2", "Software", True),
    ("Studio B talkback intermittent", "Equipment fault", False),
]
SERVICE_WORK = [
    ("Replace UPS batteries in MCR", "maintenance"),
    ("Install new vision mixer in Studio B", "installation"),
    ("Repair lighting grid hoist", "repair"),
    ("New starter needs playout access", "request"),
]
# Writes the seed makes before any user exists (locations) are made as the system.
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
    store = Store(settings.effective_database_url, fast_paths=settings.fast_paths)
    await store.connect()
    try:
        async with store.connection() as conn:
            if await conn.fetch_val(sa.select(sa.func.count()).select_from(users)):
                announce("bms: demo data not loaded: the database already has users.")
                return False
        password = secrets.token_urlsafe(12)
        async with store.unit_of_work(actor_id=None) as uow:
            people = await _seed_people_and_sites(uow, password)
            await _seed_operations(uow, people)
    finally:
        await store.disconnect()
    announce("bms: demo data loaded: 3 sites, 15 facilities, 30 people, tickets and shifts.")
    announce(f"bms: log in as {login_hint(people)}")
    announce(f"bms: demo password for every demo user: {password}")
    announce(
        "bms: lost it? set a new one with `bms user set-password USERNAME` "
        "(`bms user list` shows every user and role)"
    )
    return True


def login_hint(people: Mapping[Role, Sequence[Actor]]) -> str:
    """'admin' (admin), 'x' (manager), ...: the first demo user of each role, as stored."""
    return ", ".join(
        f"{actors[0].username!r} ({role.value})" for role, actors in people.items() if actors
    )


async def _seed_people_and_sites(uow: UnitOfWork, password: str) -> dict[Role, list[Actor]]:
    location_ids = []
    for name, code, address, tz in SITES:
        location = await create_location(
            uow, SYSTEM, {"name": name, "code": code, "address": address, "timezone": tz}
        )
        location_ids.append(location["id"])
    people: dict[Role, list[Actor]] = {role: [] for role in Role}
    for index, (first, last) in enumerate(PEOPLE):
        role = _role_for(index)
        username = "admin" if index == 0 else f"{first}.{last}".lower()
        profile = await create_user(
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
        people[role].append(Actor(profile["user"], username, role, "system"))
    return people


async def _seed_operations(uow: UnitOfWork, people: dict[Role, list[Actor]]) -> None:
    """Facilities, incident types, tickets, shifts and a meeting, through the domain rules."""
    manager = people[Role.MANAGER][0]
    operators = people[Role.OPERATOR]
    facility_ids: list[int] = []
    for location_id in await _location_ids(uow):
        for name, kind in FACILITIES:
            facility = await facilities.create_facility(
                uow, manager, {"name": name, "kind": kind, "location": location_id}
            )
            facility_ids.append(facility["id"])
    type_ids = {}
    for name, priority, color in INCIDENT_TYPES:
        created = await incident_types.create_incident_type(
            uow, manager, {"name": name, "default_priority": priority, "color": color}
        )
        type_ids[name] = created["id"]
    now = uow.now.replace(minute=0, second=0, microsecond=0)
    for n, (title, type_name, on_air) in enumerate(INCIDENTS):
        reporter = operators[n % len(operators)]
        await incident_tickets.create_incident_ticket(
            uow,
            reporter,
            {
                "title": title,
                "incident_type": type_ids[type_name],
                "facility": facility_ids[(n * 4) % len(facility_ids)],
                "on_air_impact": on_air,
                "assigned_to": operators[(n + 1) % len(operators)].id,
                "occurred_at": now - timedelta(hours=3 * n + 1),
            },
        )
    for n, (title, category) in enumerate(SERVICE_WORK):
        await service_tickets.create_service_ticket(
            uow,
            operators[n],
            {
                "title": title,
                "category": category,
                "facility": facility_ids[(n * 3) % len(facility_ids)],
                "due_date": (now + timedelta(days=7 + n)).date(),
            },
        )
    mcr_ids = facility_ids[2 :: len(FACILITIES)]  # each site's Master Control Room
    for day in range(7):
        for n, operator in enumerate(operators[:12]):
            start = now.replace(hour=6) + timedelta(days=day, hours=8 * (n % 3))
            await shifts.create_shift(
                uow,
                manager,
                {
                    "user": operator.id,
                    "facility": mcr_ids[n % len(mcr_ids)],
                    "position": "MCR operator",
                    "start": start,
                    "end": start + timedelta(hours=8),
                },
            )
    await scheduled_events.create_scheduled_event(
        uow,
        manager,
        {
            "title": "Weekly operations review",
            "kind": "meeting",
            "start": now + timedelta(days=1),
            "end": now + timedelta(days=1, hours=1),
            "attendees": [p.id for p in people[Role.MANAGER]],
        },
    )


async def _location_ids(uow: UnitOfWork) -> list[int]:
    rows = await uow.conn.fetch_all(sa.select(locations.c.id).order_by(locations.c.id))
    return [row["id"] for row in rows]
