"""Ticket numbers: sequential per kind, never reused, unique under concurrent creation."""

from __future__ import annotations

import asyncio

import pytest

from db.tables import counters
from domain.numbers import format_number, next_number
from tests.builders.tickets import make_incident, make_incident_type, make_service_ticket

CONCURRENT_CREATIONS = 20


def test_format_number() -> None:
    assert format_number("INC", 1) == "INC-000001"
    assert format_number("SRV", 1234567) == "SRV-1234567"


async def test_counter_starts_at_one_and_rolls_back_with_its_transaction(store) -> None:
    async with store.unit_of_work(actor_id=None) as uow:
        assert await next_number(uow, name="test", prefix="T") == "T-000001"
        assert await next_number(uow, name="test", prefix="T") == "T-000002"
    with pytest.raises(RuntimeError):
        async with store.unit_of_work(actor_id=None) as uow:
            assert await next_number(uow, name="test", prefix="T") == "T-000003"
            raise RuntimeError("roll back")
    async with store.unit_of_work(actor_id=None) as uow:
        # The rolled-back number was never used by a committed row, so it is handed out.
        assert await next_number(uow, name="test", prefix="T") == "T-000003"


async def test_numbers_are_per_kind_and_never_reused_after_delete(login) -> None:
    admin = await login("admin")
    kind = await make_incident_type(admin)
    first = await make_incident(admin, incident_type=kind["id"])
    second = await make_incident(admin, incident_type=kind["id"])
    assert (await admin.delete(f"/api/incident-tickets/{second['id']}/")).status_code == 204
    third = await make_incident(admin, incident_type=kind["id"])
    assert [first["number"], third["number"]] == ["INC-000001", "INC-000003"]
    assert (await make_service_ticket(admin))["number"] == "SRV-000001"


async def test_numbers_outgrow_six_digits_as_format_number_writes_them(login, store) -> None:
    """PostgreSQL numbers a ticket inside its insert; the text is `format_number`'s."""
    admin = await login("admin")
    kind = await make_incident_type(admin)
    first = await make_incident(admin, incident_type=kind["id"])
    async with store.connection() as conn:
        await conn.execute(
            counters.update().where(counters.c.name == "incident_tickets").values(value=999_998)
        )
    numbers = [(await make_incident(admin, incident_type=kind["id"]))["number"] for _ in "ab"]
    assert [first["number"], *numbers] == ["INC-000001", "INC-999999", "INC-1000000"]
    assert numbers == [format_number("INC", 999_999), format_number("INC", 1_000_000)]


async def test_concurrent_creations_get_distinct_sequential_numbers(backend, login) -> None:
    if backend != "postgres":
        pytest.skip("concurrency is a PostgreSQL property; SQLite serializes writers")
    manager = await login("manager")
    kind = await make_incident_type(manager)

    async def create(n: int) -> str:
        response = await manager.post(
            "/api/incident-tickets/", json={"title": f"Burst {n}", "incident_type": kind["id"]}
        )
        assert response.status_code == 201, response.text
        return response.json()["number"]

    async def create_service(n: int) -> str:
        response = await manager.post(
            "/api/service-tickets/", json={"title": f"Burst {n}", "category": "other"}
        )
        assert response.status_code == 201, response.text
        return response.json()["number"]

    numbers = await asyncio.gather(*(create(n) for n in range(CONCURRENT_CREATIONS)))
    expected = [format_number("INC", n) for n in range(1, CONCURRENT_CREATIONS + 1)]
    assert sorted(numbers) == expected
    services = await asyncio.gather(*(create_service(n) for n in range(CONCURRENT_CREATIONS)))
    assert sorted(services) == [e.replace("INC", "SRV") for e in expected]
    listed = (await manager.get("/api/incident-tickets/?page_size=200")).json()
    assert listed["count"] == CONCURRENT_CREATIONS
