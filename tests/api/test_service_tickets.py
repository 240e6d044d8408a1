"""Service tickets: numbering, assignment rule, status moves, completion stamp, filters."""

from __future__ import annotations

import orjson
import sqlalchemy as sa

from db.tables import events
from tests.builders.facilities import make_facility
from tests.builders.tickets import make_service_ticket, move

LIST = "/api/service-tickets/"


def url_of(ticket: dict) -> str:
    return f"{LIST}{ticket['id']}/"


async def test_create_defaults(login) -> None:
    operator = await login("operator")
    created = await make_service_ticket(operator, status="completed", requested_by=999)
    assert created["number"] == "SRV-000001"
    assert created["status"] == "new"
    assert created["priority"] == "medium"
    assert created["requested_by"] == operator.user["user"]
    assert created["assigned_to"] is None and created["completed_at"] is None
    assert created["due_date"] is None
    second = await make_service_ticket(operator, due_date="2026-12-01", priority="high")
    assert second["number"] == "SRV-000002"
    assert second["due_date"] == "2026-12-01"
    assert second["priority"] == "high"


async def test_invalid_input_is_400(login) -> None:
    operator = await login("operator")
    missing = await operator.post(LIST, json={})
    assert missing.json() == {
        "title": ["This field is required."],
        "category": ["This field is required."],
    }
    bad = await operator.post(
        LIST,
        json={"title": "T", "category": "party", "due_date": "tomorrow", "facility": 424242},
    )
    assert bad.status_code == 400
    assert set(bad.json()) == {"category", "due_date"}
    refs = await operator.post(LIST, json={"title": "T", "category": "other", "facility": 424242})
    assert refs.json() == {"facility": ['Invalid pk "424242" - object does not exist.']}


async def test_assignment_moves_new_to_assigned_and_back(login) -> None:
    operator = await login("operator")
    tech = await make_service_ticket(operator)
    url = url_of(tech)
    assigned = await operator.patch(url, json={"assigned_to": operator.user["user"]})
    assert assigned.status_code == 200
    assert assigned.json()["status"] == "assigned"
    unassigned = await operator.patch(url, json={"assigned_to": None})
    assert unassigned.json()["status"] == "new"
    nobody = await move(operator, url, "assigned")
    assert nobody.status_code == 400 and list(nobody.json()) == ["assigned_to"]
    created = await make_service_ticket(operator, assigned_to=operator.user["user"])
    assert created["status"] == "assigned"


async def test_completion_stamp_reopen_and_final_cancel(login) -> None:
    operator = await login("operator")
    ticket = await make_service_ticket(operator)
    url = url_of(ticket)
    assert (await move(operator, url, "in_progress")).status_code == 200
    assert (await move(operator, url, "on_hold")).status_code == 200
    completed = await move(operator, url, "completed")
    assert completed.status_code == 200
    assert completed.json()["completed_at"] is not None
    wrong = await move(operator, url, "on_hold")
    assert wrong.status_code == 400 and list(wrong.json()) == ["status"]
    reopened = await move(operator, url, "in_progress")
    assert reopened.json()["completed_at"] is None
    assert (await move(operator, url, "cancelled")).status_code == 200
    for status in ("new", "in_progress", "completed"):
        response = await move(operator, url, status)
        assert response.status_code == 400
    assert (await operator.get(url)).json()["status"] == "cancelled"


async def test_permission_matrix_and_if_match(login, client) -> None:
    operator = await login("operator")
    ticket = await make_service_ticket(operator)
    url = url_of(ticket)
    assert (await client.get(url)).status_code == 401
    viewer = await login("viewer")
    assert (await viewer.get(url)).status_code == 200
    assert (await viewer.post(LIST, json={"title": "x", "category": "other"})).status_code == 403
    assert (await viewer.patch(url, json={"title": "x"})).status_code == 403
    assert (await operator.delete(url)).status_code == 403
    manager = await login("manager")
    assert (await manager.delete(url)).status_code == 403
    etag = (await operator.get(url)).headers["ETag"]
    assert (await operator.patch(url, json={"title": "A"}, headers={"If-Match": etag})).is_success
    stale = await operator.patch(url, json={"title": "B"}, headers={"If-Match": etag})
    assert stale.status_code == 412
    assert (await operator.get(url)).json()["title"] == "A"
    admin = await login("admin")
    assert (await admin.delete(url, headers={"If-Match": etag})).status_code == 412
    assert (await admin.delete(url)).status_code == 204
    assert (await admin.get(url)).status_code == 404


async def test_history_records_changes(login) -> None:
    operator = await login("operator")
    ticket = await make_service_ticket(operator)
    url = url_of(ticket)
    await operator.patch(url, json={"assigned_to": operator.user["user"], "due_date": "2026-12-24"})
    entries = (await operator.get(url + "history/")).json()["results"]
    assert len(entries) == 1
    assert entries[0]["changes"] == {
        "assigned_to": [None, operator.user["user"]],
        "status": ["new", "assigned"],
        "due_date": [None, "2026-12-24"],
    }


async def test_filters_search_and_ordering(login) -> None:
    manager = await login("manager")
    operator = await login("operator")
    facility = await make_facility(manager)
    a = await make_service_ticket(
        manager, title="Replace fan", category="maintenance", due_date="2026-12-01"
    )
    b = await make_service_ticket(
        operator,
        title="New rack",
        category="installation",
        facility=facility["id"],
        priority="critical",
        due_date="2026-12-10",
        assigned_to=operator.user["user"],
    )
    c = await make_service_ticket(operator, title="Badge", category="request", priority="low")

    async def ids(query: str) -> list[int]:
        response = await manager.get(LIST + query)
        assert response.status_code == 200, response.text
        return [row["id"] for row in response.json()["results"]]

    assert await ids("") == [c["id"], b["id"], a["id"]]
    assert await ids("?status=assigned") == [b["id"]]
    assert await ids("?status=new,assigned") == [c["id"], b["id"], a["id"]]
    assert await ids("?priority=low,critical") == [c["id"], b["id"]]
    assert await ids("?category=maintenance") == [a["id"]]
    assert await ids(f"?facility={facility['id']}") == [b["id"]]
    assert await ids(f"?assigned_to={operator.user['user']}") == [b["id"]]
    assert await ids(f"?requested_by={manager.user['user']}") == [a["id"]]
    assert await ids("?due_before=2026-12-05") == [a["id"]]
    assert await ids("?due_after=2026-12-01") == [b["id"], a["id"]]
    assert await ids("?search=RACK") == [b["id"]]
    assert await ids(f"?search={a['number']}") == [a["id"]]
    assert await ids("?ordering=title") == [c["id"], b["id"], a["id"]]
    assert await ids("?ordering=-due_date&due_after=2026-01-01") == [b["id"], a["id"]]
    assert await ids("?ordering=-priority") == [b["id"], a["id"], c["id"]]


async def test_bad_filter_values_are_400(login) -> None:
    viewer = await login("viewer")
    for query in (
        "status=open",
        "priority=none",
        "category=x",
        "facility=a",
        "assigned_to=b",
        "requested_by=c",
        "due_before=2026-02-30",
        "due_after=soon",
    ):
        response = await viewer.get(f"{LIST}?{query}")
        assert response.status_code == 400, query
        assert list(response.json()) == [query.split("=")[0]]


async def test_assignment_notifies_the_assignee(login) -> None:
    requester = await login("operator")
    tech = await login("operator")
    ticket = await make_service_ticket(requester, assigned_to=tech.user["user"])
    notes = (await tech.get("/api/notifications/")).json()["results"]
    assert [n["link"] for n in notes] == [f"/api/service-tickets/{ticket['id']}/"]
    other = await make_service_ticket(requester)
    await requester.patch(url_of(other), json={"assigned_to": tech.user["user"]})
    assert (await tech.get("/api/notifications/")).json()["count"] == 2
    assert (await requester.get("/api/notifications/")).json()["count"] == 0


async def test_writes_emit_events_with_the_representation(login, store) -> None:
    operator = await login("operator")
    created = await make_service_ticket(operator)
    url = url_of(created)
    updated = (await operator.patch(url, json={"priority": "high"})).json()
    await operator.post(url + "comments/", json={"body": "no event for comments"})
    admin = await login("admin")
    assert (await admin.delete(url)).status_code == 204
    async with store.connection() as conn:
        rows = await conn.fetch_all(
            sa.select(events).where(events.c.topic == "service-tickets").order_by(events.c.id)
        )
    assert [(row["action"], orjson.loads(row["data"])) for row in rows] == [
        ("created", created),
        ("updated", updated),
        ("deleted", {"id": created["id"]}),
    ]
    assert all(row["object_id"] == created["id"] and not row["private"] for row in rows)
