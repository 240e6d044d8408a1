"""Calendar feeds: secret revocable URL, own shifts and events, facility feeds, VTIMEZONE."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import icalendar

from db.store import Store
from db.tables import scheduled_event_attendees, scheduled_events
from tests.tasks.builders import T0, make_facility, make_shift
from tests.tasks.conftest import FakeClock


async def _ics(client: Any, url: str) -> icalendar.Calendar:
    response = await client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/calendar")
    return icalendar.Calendar.from_ical(response.content)


async def test_personal_feed_with_timezone_and_revocation(
    login: Any, client: Any, store: Store, clock: FakeClock
) -> None:
    operator = await login("operator")
    uid = operator.user["user"]
    facility = await make_facility(store, timezone="Europe/London")
    summer = datetime(2026, 4, 1, 8, tzinfo=UTC)  # 09:00 BST
    await make_shift(store, user_id=uid, facility_id=facility, start=summer, position="MCR")
    other = await login("operator")
    await make_shift(store, user_id=other.user["user"], facility_id=facility, start=summer)
    async with store.connection() as conn:
        event_id = await conn.execute(
            scheduled_events.insert().values(
                title="Training", kind="training", facility_id=facility, start=summer,
                end=summer.replace(hour=10), created_at=T0, updated_at=T0,
            )
        )  # fmt: skip
        await conn.execute(
            scheduled_event_attendees.insert().values(event_id=event_id, user_id=uid)
        )

    created = await operator.post("/api/calendar-feeds/", json={})
    assert created.status_code == 201, created.text
    url = created.json()["url"]
    assert url.startswith("/api/calendar/") and url.endswith(".ics")
    listed = (await operator.get("/api/calendar-feeds/")).json()
    assert listed["count"] == 1 and "token" not in listed["results"][0]

    calendar = await _ics(client, url)  # no credentials: the URL is the secret
    events = calendar.walk("VEVENT")
    assert len(events) == 2  # the other operator's shift is not in this feed
    assert f"event-{event_id}@bms" in {str(e["uid"]) for e in events}
    shift = next(e for e in events if str(e["uid"]).startswith("shift-"))
    assert shift["dtstart"].params["TZID"] == "Europe/London"
    assert shift["dtstart"].dt.hour == 9 and shift["dtstart"].dt.astimezone(UTC) == summer
    [zone] = calendar.walk("VTIMEZONE")
    assert str(zone["tzid"]) == "Europe/London"
    assert {str(c["tzname"]) for c in zone.walk() if c.name in ("STANDARD", "DAYLIGHT")} >= {
        "GMT", "BST",
    }  # fmt: skip

    feed_id = created.json()["id"]
    assert (await other.delete(f"/api/calendar-feeds/{feed_id}/")).status_code == 404
    assert (await operator.delete(f"/api/calendar-feeds/{feed_id}/")).status_code == 204
    assert (await client.get(url)).status_code == 404
    assert (await client.get("/api/calendar/not-a-token.ics")).status_code == 404


async def test_facility_feed_for_managers_only(
    login: Any, client: Any, store: Store, make_user: Any, clock: FakeClock
) -> None:
    facility = await make_facility(store, timezone="America/New_York")
    worker = await make_user("operator")
    start = datetime(2026, 3, 3, 14, tzinfo=UTC)
    await make_shift(store, user_id=worker["user"], facility_id=facility, start=start)
    operator = await login("operator")
    denied = await operator.post("/api/calendar-feeds/", json={"facility": facility})
    assert denied.status_code == 403
    manager = await login("manager")
    bad = await manager.post("/api/calendar-feeds/", json={"facility": 999999})
    assert bad.status_code == 400 and "facility" in bad.json()
    created = await manager.post("/api/calendar-feeds/", json={"facility": facility})
    assert created.status_code == 201
    calendar = await _ics(client, created.json()["url"])
    [shift] = calendar.walk("VEVENT")
    assert worker["username"] in str(shift["summary"])
    assert shift["dtstart"].params["TZID"] == "America/New_York"
    assert shift["dtstart"].dt.hour == 9  # 14:00Z is 09:00 EST
