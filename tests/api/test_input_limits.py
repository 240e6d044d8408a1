"""Bad input is a 4xx naming what is wrong, never a 500, on both backends (CONTRACT §5)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from db.tables import shifts, time_off_requests
from domain import local_days
from tests.builders.facilities import make_facility
from tests.builders.shifts import make_shift
from tests.builders.tickets import make_incident, make_incident_type
from tests.builders.time_off import make_time_off

EDGE = "9999-12-31T23:59:59-14:00"  # its UTC instant is past the calendar's end


@pytest.mark.parametrize("object_id", ["3000000000", "99999999999999999999999", "0"])
@pytest.mark.parametrize("path", ["incident-tickets", "shifts", "facilities"])
async def test_a_path_id_out_of_range_is_404(login, path: str, object_id: str) -> None:
    manager = await login("manager")
    response = await manager.get(f"/api/{path}/{object_id}/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}
    assert (await manager.delete(f"/api/{path}/{object_id}/")).status_code == 404


@pytest.mark.parametrize("value", ["3000000000", "-3000000000", "99999999999999999999999"])
async def test_an_id_filter_out_of_range_is_400_on_the_filter(login, value: str) -> None:
    viewer = await login("viewer")
    response = await viewer.get("/api/incident-tickets/", params={"facility": value})
    assert response.status_code == 400
    assert list(response.json()) == ["facility"]


async def test_a_body_id_out_of_range_is_400_on_the_field(login) -> None:
    manager = await login("manager")
    kind = await make_incident_type(manager)
    response = await manager.post(
        "/api/incident-tickets/",
        json={"title": "x", "incident_type": kind["id"], "facility": 3000000000},
    )
    assert response.status_code == 400
    assert response.json() == {
        "facility": ["Ensure this value is between -2147483648 and 2147483647."]
    }
    response = await manager.post(
        "/api/scheduled-events/",
        json={
            "title": "x",
            "kind": "other",
            "start": "2026-12-01T08:00:00Z",
            "end": "2026-12-01T09:00:00Z",
            "attendees": [1, 2**40],
        },
    )
    assert response.status_code == 400
    assert list(response.json()) == ["attendees"]


@pytest.mark.parametrize("page", ["1000000000000000000000000000000", "2147483648"])
async def test_a_page_beyond_any_possible_page_is_404(login, page: str) -> None:
    viewer = await login("viewer")
    response = await viewer.get("/api/incident-tickets/", params={"page": page})
    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid page."}


@pytest.mark.parametrize("size", ["0", "-5", "x"])
async def test_a_page_size_below_one_means_the_default(login, size: str) -> None:
    manager = await login("manager")
    kind = await make_incident_type(manager)
    for _ in range(3):
        await make_incident(manager, incident_type=kind["id"])
    page = (await manager.get("/api/incident-tickets/", params={"page_size": size})).json()
    assert page["count"] == 3 and len(page["results"]) == 3 and page["next"] is None


@pytest.mark.parametrize("field", ["title", "description", "resolution"])
async def test_nul_in_text_is_400_on_the_field(login, field: str) -> None:
    operator = await login("operator")
    manager = await login("manager")
    kind = await make_incident_type(manager)
    body = {"title": "Feed down", "incident_type": kind["id"], field: "bad\x00text"}
    response = await operator.post("/api/incident-tickets/", json=body)
    assert response.status_code == 400
    assert response.json() == {field: ["Null characters are not allowed."]}


async def test_one_line_text_refuses_control_characters_long_text_keeps_tabs(login) -> None:
    manager = await login("manager")
    kind = await make_incident_type(manager)
    for bad in ["a\tb", "a\nb", "a\x1bb", "a\x85b", "a\u2028b", "a\x7fb"]:
        response = await manager.post(
            "/api/incident-tickets/", json={"title": bad, "incident_type": kind["id"]}
        )
        assert response.status_code == 400, bad
        assert response.json() == {"title": ["Control characters are not allowed."]}
    text = "line one\r\n\tline two"
    ticket = await make_incident(manager, incident_type=kind["id"], description=text)
    assert ticket["description"] == text
    response = await manager.patch(
        f"/api/incident-tickets/{ticket['id']}/", json={"description": "a\x0bb"}
    )
    assert response.status_code == 400
    assert response.json() == {"description": ["Control characters are not allowed."]}


@pytest.mark.parametrize("param", ["search", "status", "department"])
async def test_nul_in_a_query_parameter_is_400_on_it(login, param: str) -> None:
    viewer = await login("viewer")
    path = "/api/profiles/" if param == "department" else "/api/incident-tickets/"
    response = await viewer.get(path, params={param: "x\x00"})
    assert response.status_code == 400
    assert list(response.json()) == [param]


@pytest.mark.parametrize("path", ["/api/auth/token/", "/api/auth/login/"])
async def test_nul_in_a_username_is_400_before_any_lookup(client, path: str) -> None:
    token = (await client.get("/api/csrf/")).json()["csrfToken"]
    response = await client.post(
        path, json={"username": "admin\x00", "password": "x"}, headers={"X-CSRFToken": token}
    )
    assert response.status_code == 400
    assert response.json() == {"username": ["Null characters are not allowed."]}


async def test_datetimes_past_the_calendar_edge_are_400(login) -> None:
    operator = await login("operator")
    manager = await login("manager")
    kind = await make_incident_type(manager)
    body = {"title": "x", "incident_type": kind["id"], "occurred_at": EDGE}
    response = await operator.post("/api/incident-tickets/", json=body)
    assert response.status_code == 400
    assert response.json() == {
        "occurred_at": ["Datetime must fall between 0001-01-02 and 9999-12-30 (UTC)."]
    }
    for value in [EDGE, "0001-01-01T00:00:00+14:00"]:
        response = await operator.get("/api/incident-tickets/", params={"created_after": value})
        assert response.status_code == 400
        assert list(response.json()) == ["created_after"]
    response = await operator.post(
        "/api/time-off-requests/",
        json={"kind": "vacation", "start_date": "9999-12-31", "end_date": "9999-12-31"},
    )
    assert response.status_code == 400
    assert list(response.json()) == ["start_date", "end_date"]


async def test_rows_on_the_last_day_of_the_calendar_never_break_a_read(login, store) -> None:
    manager = await login("manager")
    operator = await login("operator")
    facility = await make_facility(manager)
    shift = await make_shift(manager, user=operator.user["id"], facility=facility["id"])
    request = await make_time_off(operator)
    # Stored before the limits existed (or written by hand): the reads must still work.
    async with store.connection() as conn:
        await conn.execute(
            sa.update(shifts)
            .where(shifts.c.id == shift["id"])
            .values(
                start=datetime(9999, 12, 31, 10, tzinfo=UTC),
                end=datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
            )
        )
        await local_days.recount(conn, facility_id=facility["id"])  # as an import would
        await conn.execute(
            sa.update(time_off_requests)
            .where(time_off_requests.c.id == request["id"])
            .values(start_date=date.max, end_date=date.max)
        )
    listed = await manager.get("/api/time-off-requests/")
    assert listed.status_code == 200, listed.text
    assert listed.json()["results"][0]["conflicting_shifts"] == [shift["id"]]
    detail = await manager.get(f"/api/time-off-requests/{request['id']}/")
    assert detail.status_code == 200 and detail.json()["conflicting_shifts"] == [shift["id"]]
    exported = await manager.get("/api/time-off-requests/", params={"format": "csv"})
    assert exported.status_code == 200 and "9999-12-31" in exported.text  # (no CSV: JSON)
    assert (await manager.get("/api/shifts/", params={"format": "csv"})).status_code == 200
    if store.is_postgres:  # asyncpg stores datetime.max as `infinity`
        async with store.connection() as conn:
            await conn.execute(
                sa.update(shifts)
                .where(shifts.c.id == shift["id"])
                .values(end=datetime.max.replace(tzinfo=UTC))
            )
            await local_days.recount(conn, facility_id=facility["id"])
        listed = await manager.get("/api/time-off-requests/")
        assert listed.status_code == 200, listed.text
