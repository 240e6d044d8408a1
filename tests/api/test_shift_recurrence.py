"""Recurring shifts: RRULE validation and the `series` row the recurring job reads."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from db.tables import series
from tests.builders.facilities import make_facility, make_location
from tests.builders.shifts import shift_body


async def test_shift_with_recurrence_is_first_occurrence_of_a_series(login, store) -> None:
    manager = await login("manager")
    user_id = (await login("operator")).user["user"]
    location = await make_location(manager, timezone="America/New_York")
    facility = await make_facility(manager, location=location["id"])
    body = await shift_body(
        manager,
        user=user_id,
        facility=facility["id"],
        notes="weekly",
        recurrence="RRULE:FREQ=WEEKLY;BYDAY=TU,WE;COUNT=10",
    )
    response = await manager.post("/api/shifts/", json=body)
    assert response.status_code == 201, response.text
    shift = response.json()
    assert shift["series"] is not None
    assert "recurrence" not in shift
    async with store.connection() as conn:
        row = await conn.fetch_one(sa.select(series).where(series.c.id == shift["series"]))
    assert row["kind"] == "shift"
    assert row["rrule"] == "FREQ=WEEKLY;BYDAY=TU,WE;COUNT=10"
    assert row["dtstart"].isoformat() == "2026-12-01T08:00:00+00:00"
    assert row["duration_secs"] == 8 * 3600
    assert row["timezone"] == "America/New_York"
    assert row["template"] == {
        "user_id": user_id,
        "facility_id": facility["id"],
        "position": "MCR operator",
        "notes": "weekly",
    }
    assert row["created_by"] == manager.user["user"]


@pytest.mark.parametrize(
    "rule",
    [
        "garbage",
        "FREQ=FOO",
        "FREQ=DAILY;BYDAY=XX",
        "FREQ=HOURLY;COUNT=3",
        "FREQ=DAILY;COUNT=0",
        "FREQ=DAILY;UNTIL=20200101T000000Z",
        "FREQ=DAILY;UNTIL=20270101T000000",
        "DTSTART:20260101T000000\nRRULE:FREQ=DAILY",
        42,
    ],
)
async def test_invalid_recurrence_is_400_and_creates_nothing(login, rule) -> None:
    manager = await login("manager")
    user_id = (await login("operator")).user["user"]
    body = await shift_body(manager, user=user_id, recurrence=rule)
    response = await manager.post("/api/shifts/", json=body)
    assert response.status_code == 400
    assert list(response.json()) == ["recurrence"]
    assert (await manager.get("/api/shifts/")).json()["count"] == 0


async def test_recurrence_is_ignored_on_update(login) -> None:
    manager = await login("manager")
    user_id = (await login("operator")).user["user"]
    response = await manager.post("/api/shifts/", json=await shift_body(manager, user=user_id))
    shift = response.json()
    url = f"/api/shifts/{shift['id']}/"
    patched = await manager.patch(url, json={"recurrence": "FREQ=DAILY", "notes": "n"})
    assert patched.status_code == 200
    assert patched.json()["series"] is None
