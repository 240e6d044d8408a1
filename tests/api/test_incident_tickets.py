"""Incident tickets: defaults, status machine, permissions, filters, history, events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
import sqlalchemy as sa

from db.tables import events, history
from tests.builders.facilities import make_facility
from tests.builders.tickets import make_incident, make_incident_type, move

LIST = "/api/incident-tickets/"


def url_of(ticket: dict) -> str:
    return f"{LIST}{ticket['id']}/"


@pytest.fixture
async def manager(login):
    return await login("manager")


@pytest.fixture
async def kind(manager) -> dict:
    return await make_incident_type(manager, default_priority="high")


async def test_create_sets_number_defaults_and_emits_event(login, manager, kind, store) -> None:
    operator = await login("operator")
    before = datetime.now(UTC)
    created = await make_incident(operator, incident_type=kind["id"])
    assert created["number"] == "INC-000001"
    assert created["priority"] == "high"  # the type's default_priority
    assert created["status"] == "open"
    assert created["reported_by"] == operator.user["user"]
    assert created["assigned_to"] is None and created["facility"] is None
    assert created["on_air_impact"] is False
    occurred = datetime.fromisoformat(created["occurred_at"])
    assert before - timedelta(seconds=5) <= occurred <= datetime.now(UTC) + timedelta(seconds=5)
    assert created["occurred_at"].endswith("Z")
    assert created["acknowledged_at"] is created["resolved_at"] is created["closed_at"] is None
    second = await make_incident(
        operator,
        incident_type=kind["id"],
        priority="low",
        occurred_at="2026-11-26T10:00:00+02:00",
        number="INC-999999",  # read-only: ignored
        reported_by=12345,
        status="closed",
    )
    assert second["number"] == "INC-000002"
    assert second["priority"] == "low"
    assert second["occurred_at"] == "2026-11-26T08:00:00Z"
    assert second["reported_by"] == operator.user["user"]
    assert second["status"] == "open"
    async with store.connection() as conn:
        row = await conn.fetch_one(
            sa.select(events).where(events.c.topic == "incident-tickets").order_by(events.c.id)
        )
    assert row["action"] == "created"
    assert orjson.loads(row["data"]) == created


async def test_invalid_input_is_400_per_field(manager, kind) -> None:
    missing = await manager.post(LIST, json={})
    assert missing.status_code == 400
    assert missing.json() == {
        "title": ["This field is required."],
        "incident_type": ["This field is required."],
    }
    bad_refs = await manager.post(
        LIST,
        json={"title": "T", "incident_type": 999999, "facility": 999998, "assigned_to": 999997},
    )
    assert bad_refs.status_code == 400
    assert bad_refs.json()["incident_type"] == ['Invalid pk "999999" - object does not exist.']
    assert set(bad_refs.json()) == {"incident_type", "facility", "assigned_to"}
    naive = await manager.post(
        LIST,
        json={"title": "T", "incident_type": kind["id"], "occurred_at": "2026-11-26T10:00:00"},
    )
    assert naive.status_code == 400 and list(naive.json()) == ["occurred_at"]
    choice = await manager.post(
        LIST, json={"title": "T", "incident_type": kind["id"], "priority": "urgent"}
    )
    assert choice.status_code == 400 and list(choice.json()) == ["priority"]
    assert (await manager.get(LIST)).json()["count"] == 0


async def test_a_refused_reference_takes_no_number_and_leaves_no_event(
    manager, kind, store
) -> None:
    """The reference check runs inside the numbered insert (PostgreSQL): a missing row
    stops the insert and the counter alike, and the 400 names that field alone."""
    facility = await make_facility(manager)
    good = {"title": "T", "incident_type": kind["id"], "facility": facility["id"]}
    for field in ("incident_type", "facility", "assigned_to"):
        refused = await manager.post(LIST, json={**good, field: 999999})
        assert refused.status_code == 400
        assert refused.json() == {field: ['Invalid pk "999999" - object does not exist.']}
    created = (await manager.post(LIST, json={**good, "assigned_to": None})).json()
    assert created["number"] == "INC-000001"
    assert created["facility"] == facility["id"] and created["priority"] == "high"
    async with store.connection() as conn:
        rows = await conn.fetch_all(
            sa.select(events.c.action, events.c.object_id).where(
                events.c.topic == "incident-tickets"
            )
        )
    assert [(r["action"], r["object_id"]) for r in rows] == [("created", created["id"])]


async def test_full_lifecycle_sets_and_clears_stamps(login, kind) -> None:
    operator = await login("operator")
    ticket = await make_incident(operator, incident_type=kind["id"])
    url = url_of(ticket)
    acked = await move(operator, url, "acknowledged")
    assert acked.status_code == 200, acked.text
    assert acked.json()["acknowledged_at"] is not None
    assert (await move(operator, url, "in_progress")).status_code == 200
    no_resolution = await move(operator, url, "resolved")
    assert no_resolution.status_code == 400
    assert list(no_resolution.json()) == ["resolution"]
    blank = await move(operator, url, "resolved", resolution="   ")
    assert blank.status_code == 400
    resolved = await move(operator, url, "resolved", resolution="Rebooted encoder")
    assert resolved.status_code == 200
    assert resolved.json()["resolved_at"] is not None
    reopened = await move(operator, url, "in_progress")
    assert reopened.status_code == 200
    assert reopened.json()["resolved_at"] is None
    assert (await move(operator, url, "resolved")).status_code == 200  # resolution kept
    closed = await move(operator, url, "closed")
    assert closed.status_code == 200
    body = closed.json()
    assert body["status"] == "closed"
    assert body["closed_at"] is not None
    assert body["acknowledged_at"] == acked.json()["acknowledged_at"]


FORBIDDEN_MOVES = [
    ("open", "in_progress"),
    ("open", "resolved"),
    ("acknowledged", "open"),
    ("acknowledged", "resolved"),
    ("in_progress", "acknowledged"),
    ("in_progress", "open"),
    ("resolved", "acknowledged"),
    ("closed", "open"),
    ("closed", "in_progress"),
]
PATH_TO = {
    "open": [],
    "acknowledged": ["acknowledged"],
    "in_progress": ["acknowledged", "in_progress"],
    "resolved": ["acknowledged", "in_progress", "resolved"],
    "closed": ["closed"],
}


async def test_forbidden_moves_are_400_and_change_nothing(manager, kind) -> None:
    for start, target in FORBIDDEN_MOVES:
        ticket = await make_incident(manager, incident_type=kind["id"], resolution="Fixed")
        url = url_of(ticket)
        for status in PATH_TO[start]:
            assert (await move(manager, url, status)).status_code == 200
        before = (await manager.get(url)).json()
        response = await move(manager, url, target, title="Changed")
        assert response.status_code == 400, (start, target)
        assert list(response.json()) == ["status"]
        assert (await manager.get(url)).json() == before
        entries = (await manager.get(url + "history/")).json()["count"]
        assert entries == len(PATH_TO[start])


async def test_only_a_manager_closes_from_any_status(login, manager, kind) -> None:
    operator = await login("operator")
    ticket = await make_incident(operator, incident_type=kind["id"])
    url = url_of(ticket)
    denied = await move(operator, url, "closed")
    assert denied.status_code == 403
    assert (await operator.get(url)).json()["status"] == "open"
    assert (await move(operator, url, "acknowledged")).status_code == 200
    assert (await move(operator, url, "closed")).status_code == 403
    closed = await move(manager, url, "closed")
    assert closed.status_code == 200
    assert closed.json()["closed_at"] is not None
    assert closed.json()["resolved_at"] is None


async def test_permission_matrix(login, client, manager, kind) -> None:
    ticket = await make_incident(manager, incident_type=kind["id"])
    url = url_of(ticket)
    body = {"title": "New", "incident_type": kind["id"]}
    assert (await client.get(LIST)).status_code == 401
    viewer = await login("viewer")
    assert (await viewer.get(LIST)).json()["count"] == 1
    assert (await viewer.get(url)).status_code == 200
    assert (await viewer.post(LIST, json=body)).status_code == 403
    assert (await viewer.patch(url, json={"title": "X"})).status_code == 403
    assert (await viewer.put(url, json=body)).status_code == 403
    assert (await viewer.delete(url)).status_code == 403
    operator = await login("operator")
    assert (await operator.post(LIST, json=body)).status_code == 201
    assert (await operator.patch(url, json={"title": "X"})).status_code == 200
    assert (await operator.delete(url)).status_code == 403
    assert (await manager.delete(url)).status_code == 403
    admin = await login("admin")
    assert (await admin.delete(url)).status_code == 204
    assert (await admin.get(url)).status_code == 404
    assert (await admin.patch(url, json={"title": "Y"})).status_code == 404


async def test_put_requires_fields_and_if_match_guards_writes(manager, kind) -> None:
    ticket = await make_incident(manager, incident_type=kind["id"], description="d")
    url = url_of(ticket)
    nulls = await manager.patch(url, json={"priority": None, "occurred_at": None})
    assert nulls.status_code == 400 and set(nulls.json()) == {"priority", "occurred_at"}
    put = await manager.put(url, json={"title": "Only title"})
    assert put.status_code == 400 and list(put.json()) == ["incident_type"]
    etag = (await manager.get(url)).headers["ETag"]
    ok = await manager.put(
        url, json={"title": "Whole", "incident_type": kind["id"]}, headers={"If-Match": etag}
    )
    assert ok.status_code == 200
    assert ok.json()["description"] == "d"  # PUT keeps fields it does not name
    assert ok.headers["ETag"] != etag
    stale = await manager.patch(url, json={"title": "Stale"}, headers={"If-Match": etag})
    assert stale.status_code == 412
    admin_delete = await manager.delete(url, headers={"If-Match": etag})
    assert admin_delete.status_code in (403, 412)
    assert (await manager.get(url)).json()["title"] == "Whole"


async def test_stale_if_match_on_delete_is_412(login, manager, kind) -> None:
    """The delete (thread included) is refused whole: nothing of the ticket goes."""
    ticket = await make_incident(manager, incident_type=kind["id"])
    url = url_of(ticket)
    admin = await login("admin")
    etag = (await admin.get(url)).headers["ETag"]
    await manager.patch(url, json={"title": "Changed"})
    await manager.post(url + "comments/", json={"body": "note"})
    assert (await admin.delete(url, headers={"If-Match": etag})).status_code == 412
    assert (await admin.get(url)).status_code == 200
    assert (await admin.get(url + "comments/")).json()["count"] == 1
    assert (await admin.get(url + "history/")).json()["count"] == 1
    assert (await admin.delete(f"{LIST}999999/")).status_code == 404


async def test_every_change_is_recorded_in_history(login, manager, kind, store) -> None:
    operator = await login("operator")
    ticket = await make_incident(operator, incident_type=kind["id"])
    url = url_of(ticket)
    await operator.patch(url, json={"title": "Renamed", "on_air_impact": True})
    await move(manager, url, "acknowledged")
    await operator.patch(url, json={"title": "Renamed"})  # no change: no entry
    page = (await operator.get(url + "history/")).json()
    assert page["count"] == 2 and page["next"] is None
    first, second = page["results"]
    assert first["actor"] == operator.user["user"]
    assert first["changes"] == {
        "title": [ticket["title"], "Renamed"],
        "on_air_impact": [False, True],
    }
    assert second["actor"] == manager.user["user"]
    assert second["changes"]["status"] == ["open", "acknowledged"]
    assert second["changes"]["acknowledged_at"][0] is None
    assert set(first) == {"id", "actor", "at", "changes"}
    assert first["at"].endswith("Z") and first["id"] < second["id"]
    paged = (await operator.get(url + "history/?page_size=1&page=2")).json()
    assert paged["results"] == [second] and paged["previous"] is not None
    assert (await operator.get(f"{LIST}999999/history/")).status_code == 404
    async with store.connection() as conn:
        count = await conn.fetch_val(
            sa.select(sa.func.count()).where(events.c.topic == "incident-tickets")
        )
    assert count == 3  # created + two updates; the no-op PATCH emitted nothing


async def test_delete_removes_comments_and_history(login, manager, kind, store) -> None:
    ticket = await make_incident(manager, incident_type=kind["id"])
    url = url_of(ticket)
    await manager.patch(url, json={"title": "x"})
    await manager.post(url + "comments/", json={"body": "note"})
    admin = await login("admin")
    assert (await admin.delete(url)).status_code == 204
    async with store.connection() as conn:
        left = await conn.fetch_val(
            sa.select(sa.func.count()).where(history.c.subject == "incident-tickets")
        )
    assert left == 0
    assert (await admin.get(url + "comments/")).status_code == 404


async def test_filters_search_and_ordering(login, manager, kind) -> None:
    other_kind = await make_incident_type(manager)
    operator = await login("operator")
    facility = await make_facility(manager)
    a = await make_incident(
        manager, incident_type=kind["id"], title="Studio A audio hum", facility=facility["id"]
    )
    b = await make_incident(
        operator,
        incident_type=other_kind["id"],
        title="Transmitter down",
        priority="critical",
        on_air_impact=True,
        assigned_to=operator.user["user"],
    )
    c = await make_incident(operator, incident_type=kind["id"], title="Clock drift", priority="low")
    await move(manager, url_of(c), "acknowledged")

    async def ids(query: str) -> list[int]:
        response = await manager.get(LIST + query)
        assert response.status_code == 200, response.text
        return [row["id"] for row in response.json()["results"]]

    assert await ids("") == [c["id"], b["id"], a["id"]]  # -created_at
    assert await ids("?status=acknowledged") == [c["id"]]
    assert await ids("?status=open,acknowledged") == [c["id"], b["id"], a["id"]]
    assert await ids("?priority=critical,low") == [c["id"], b["id"]]
    assert await ids(f"?facility={facility['id']}") == [a["id"]]
    assert await ids(f"?incident_type={other_kind['id']}") == [b["id"]]
    assert await ids(f"?assigned_to={operator.user['user']}") == [b["id"]]
    assert await ids(f"?reported_by={manager.user['user']}") == [a["id"]]
    assert await ids("?on_air_impact=true") == [b["id"]]
    assert await ids("?search=HUM") == [a["id"]]
    assert await ids(f"?search={b['number']}") == [b["id"]]
    assert await ids("?ordering=priority") == [c["id"], a["id"], b["id"]]
    assert await ids("?ordering=-priority") == [b["id"], a["id"], c["id"]]
    assert await ids("?ordering=title") == [c["id"], a["id"], b["id"]]
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert await ids("?created_after=" + future.replace("+", "%2B")) == []
    assert len(await ids("?created_before=" + future.replace("+", "%2B"))) == 3
    assert len(await ids("?created_after=2000-01-01T00:00:00Z")) == 3


async def test_bad_filter_values_are_400_keyed_by_filter(manager) -> None:
    for query in (
        "status=pending",
        "priority=urgent",
        "facility=abc",
        "incident_type=1.5",
        "assigned_to=me",
        "reported_by=x",
        "on_air_impact=maybe",
        "created_after=yesterday",
        "created_before=2026-13-01",
    ):
        response = await manager.get(f"{LIST}?{query}")
        assert response.status_code == 400, query
        assert list(response.json()) == [query.split("=")[0]]


async def test_assignment_notifies_the_assignee_once(login, manager, kind) -> None:
    tech = await login("operator")
    other = await login("operator")
    ticket = await make_incident(manager, incident_type=kind["id"], assigned_to=tech.user["user"])
    url = url_of(ticket)
    await manager.patch(url, json={"title": "Still assigned", "assigned_to": tech.user["user"]})
    notes = (await tech.get("/api/notifications/")).json()["results"]
    assert len(notes) == 1
    assert notes[0]["kind"] == "ticket_assigned"
    assert notes[0]["title"] == f"{ticket['number']} assigned to you"
    assert notes[0]["link"] == f"/api/incident-tickets/{ticket['id']}/"
    await manager.patch(url, json={"assigned_to": other.user["user"]})
    assert (await other.get("/api/notifications/")).json()["count"] == 1
    await other.patch(url, json={"assigned_to": None})
    await other.patch(url, json={"assigned_to": other.user["user"]})  # took it themselves
    assert (await other.get("/api/notifications/")).json()["count"] == 1
