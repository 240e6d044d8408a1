"""Time entries: private rows, the draft → submitted → approved/rejected workflow, links, CSV."""

from __future__ import annotations

import orjson
import sqlalchemy as sa

from db.tables import events, history, time_entries
from tests.builders.shifts import make_shift
from tests.builders.tickets import make_incident, make_incident_type, make_service_ticket
from tests.builders.time_entries import entry_body, make_time_entry


async def test_operator_creates_own_entry_with_computed_duration(login, store) -> None:
    operator = await login("operator")
    other = await login("operator")
    response = await operator.post(
        "/api/time-entries/", json=entry_body(user=other.user["user"], reviewed_by=1)
    )
    assert response.status_code == 201, response.text
    entry = response.json()
    assert entry == {
        "id": entry["id"],
        "user": operator.user["user"],
        "date": "2026-12-01",
        "start": "2026-12-01T09:00:00Z",
        "end": "2026-12-01T10:30:00Z",
        "duration_minutes": 90,
        "shift": None,
        "incident_ticket": None,
        "service_ticket": None,
        "description": "Playout checks",
        "status": "draft",
        "reviewed_by": None,
        "reviewed_at": None,
        "created_at": entry["created_at"],
        "updated_at": entry["updated_at"],
    }
    async with store.connection() as conn:
        row = await conn.fetch_one(sa.select(events).where(events.c.topic == "time-entries"))
    assert row["private"] is True or row["private"] == 1
    assert row["owner_id"] == operator.user["user"]


async def test_date_defaults_to_start_day_and_times_are_checked(login) -> None:
    operator = await login("operator")
    body = entry_body(start="2026-12-02T23:30:00-05:00", end="2026-12-03T01:00:00-05:00")
    del body["date"]
    entry = (await operator.post("/api/time-entries/", json=body)).json()
    assert entry["date"] == "2026-12-03"  # the UTC day: this user has no location
    assert entry["duration_minutes"] == 90
    for end in ("2026-12-01T09:00:00Z", "2026-12-01T08:00:00Z"):
        response = await operator.post("/api/time-entries/", json=entry_body(end=end))
        assert response.status_code == 400 and list(response.json()) == ["end"]
    naive = await operator.post("/api/time-entries/", json=entry_body(start="2026-12-01T09:00"))
    assert naive.status_code == 400 and list(naive.json()) == ["start"]
    bad_date = await operator.post("/api/time-entries/", json=entry_body(date="01/12/2026"))
    assert bad_date.status_code == 400 and list(bad_date.json()) == ["date"]


async def test_links_are_validated(login) -> None:
    manager = await login("manager")
    operator = await login("operator")
    other = await login("operator")
    own_shift = await make_shift(manager, user=operator.user["user"])
    their_shift = await make_shift(manager, user=other.user["user"])
    for field in ("shift", "incident_ticket", "service_ticket"):
        response = await operator.post("/api/time-entries/", json=entry_body(**{field: 999999}))
        assert response.status_code == 400
        assert response.json() == {field: ['Invalid pk "999999" - object does not exist.']}
    response = await operator.post("/api/time-entries/", json=entry_body(shift=their_shift["id"]))
    assert response.status_code == 400 and list(response.json()) == ["shift"]
    linked = await make_time_entry(operator, shift=own_shift["id"])
    assert linked["shift"] == own_shift["id"]


async def test_private_rows_never_leak(login) -> None:
    alice = await login("operator")
    bob = await login("operator")
    manager = await login("manager")
    viewer = await login("viewer")
    mine = await make_time_entry(alice)
    theirs = await make_time_entry(bob, description="bob's")
    url = f"/api/time-entries/{theirs['id']}/"

    listed = (await alice.get("/api/time-entries/")).json()
    assert listed["count"] == 1 and [e["id"] for e in listed["results"]] == [mine["id"]]
    assert (await alice.get(f"/api/time-entries/?user={bob.user['user']}")).json()["count"] == 0
    assert (await alice.get("/api/time-entries/?search=bob")).json()["count"] == 0
    assert (await alice.get(url)).status_code == 404
    assert (await alice.get(url)).json() == {"detail": "Not found."}
    assert (await alice.patch(url, json={"description": "x"})).status_code == 404
    assert (await alice.put(url, json=entry_body())).status_code == 404
    assert (await alice.delete(url)).status_code == 404
    assert (await viewer.get("/api/time-entries/")).json()["count"] == 0
    assert (await viewer.get(url)).status_code == 404

    csv = await alice.get("/api/time-entries/?format=csv")
    assert csv.status_code == 200
    lines = csv.text.strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith(f"{mine['id']},{alice.user['user']},")
    assert "bob's" not in csv.text

    assert (await manager.get("/api/time-entries/")).json()["count"] == 2
    assert (await manager.get(url)).status_code == 200
    manager_csv = (await manager.get("/api/time-entries/?format=csv")).text
    assert len(manager_csv.strip().splitlines()) == 3
    assert (await bob.get(url)).json()["description"] == "bob's"


async def test_workflow_and_permission_matrix(login) -> None:
    operator = await login("operator")
    manager = await login("manager")
    entry = await make_time_entry(operator)
    url = f"/api/time-entries/{entry['id']}/"

    early = await manager.patch(url, json={"status": "approved"})
    assert early.status_code == 400 and list(early.json()) == ["status"]
    assert (await operator.patch(url, json={"status": "approved"})).status_code == 403
    submitted = await operator.patch(url, json={"status": "submitted", "description": "ok"})
    assert submitted.status_code == 200 and submitted.json()["status"] == "submitted"
    assert (await operator.patch(url, json={"status": "approved"})).status_code == 403
    assert (await operator.patch(url, json={"status": "rejected"})).status_code == 403
    back = await operator.patch(url, json={"status": "draft"})
    assert back.status_code == 400 and list(back.json()) == ["status"]
    bogus = await operator.patch(url, json={"status": "paid"})
    assert bogus.status_code == 400 and list(bogus.json()) == ["status"]
    # Owner still edits while submitted.
    edited = await operator.patch(url, json={"end": "2026-12-01T11:00:00Z"})
    assert edited.status_code == 200 and edited.json()["duration_minutes"] == 120

    approved = await manager.patch(url, json={"status": "approved"})
    assert approved.status_code == 200
    body = approved.json()
    assert body["status"] == "approved"
    assert body["reviewed_by"] == manager.user["user"] and body["reviewed_at"]
    frozen = await operator.patch(url, json={"description": "later"})
    assert frozen.status_code == 400 and list(frozen.json()) == ["non_field_errors"]
    assert (await manager.patch(url, json={"status": "rejected"})).status_code == 400
    assert (await operator.get(url)).json() == body


async def test_rejected_entry_goes_back_to_draft_for_its_owner(login) -> None:
    operator = await login("operator")
    manager = await login("manager")
    entry = await make_time_entry(operator, status="submitted")
    url = f"/api/time-entries/{entry['id']}/"
    assert (await manager.patch(url, json={"status": "rejected"})).status_code == 200
    reopened = await operator.patch(url, json={"status": "draft", "description": "fixed"})
    assert reopened.status_code == 200
    assert reopened.json()["status"] == "draft" and reopened.json()["description"] == "fixed"


async def test_create_status_and_viewer_cannot_write(login) -> None:
    operator = await login("operator")
    viewer = await login("viewer")
    manager = await login("manager")
    response = await operator.post("/api/time-entries/", json=entry_body(status="approved"))
    assert response.status_code == 400 and list(response.json()) == ["status"]
    response = await manager.post("/api/time-entries/", json=entry_body(status="approved"))
    assert response.status_code == 400
    assert (await viewer.post("/api/time-entries/", json=entry_body())).status_code == 403


async def test_manager_logs_time_for_someone_else(login) -> None:
    operator = await login("operator")
    manager = await login("manager")
    entry = await make_time_entry(manager, user=operator.user["user"])
    assert entry["user"] == operator.user["user"]
    assert (await operator.get(f"/api/time-entries/{entry['id']}/")).status_code == 200
    response = await manager.post("/api/time-entries/", json=entry_body(user=999999))
    assert response.status_code == 400 and list(response.json()) == ["user"]
    mine = await make_time_entry(manager)
    assert mine["user"] == manager.user["user"]


async def test_delete_rules(login) -> None:
    operator = await login("operator")
    manager = await login("manager")
    admin = await login("admin")
    draft = await make_time_entry(operator)
    assert (await manager.delete(f"/api/time-entries/{draft['id']}/")).status_code == 403
    assert (await operator.delete(f"/api/time-entries/{draft['id']}/")).status_code == 204
    approved = await make_time_entry(operator, status="submitted")
    url = f"/api/time-entries/{approved['id']}/"
    await manager.patch(url, json={"status": "approved"})
    assert (await operator.delete(url)).status_code == 403
    assert (await admin.delete(url)).status_code == 204
    assert (await admin.get(url)).status_code == 404


async def test_filters_and_default_ordering(login) -> None:
    manager = await login("manager")
    operator = await login("operator")
    shift = await make_shift(manager, user=operator.user["user"])
    first = await make_time_entry(operator, date="2026-11-30", status="submitted")
    second = await make_time_entry(operator, date="2026-12-02", shift=shift["id"])
    third = await make_time_entry(manager, date="2026-12-01")

    async def ids(client, query: str) -> list[int]:
        response = await client.get(f"/api/time-entries/{query}")
        assert response.status_code == 200, response.text
        return [e["id"] for e in response.json()["results"]]

    assert await ids(manager, "") == [second["id"], third["id"], first["id"]]
    assert await ids(manager, "?ordering=date") == [first["id"], third["id"], second["id"]]
    assert await ids(manager, f"?user={operator.user['user']}") == [second["id"], first["id"]]
    assert await ids(manager, "?status=submitted") == [first["id"]]
    assert await ids(manager, "?date_after=2026-12-01") == [second["id"], third["id"]]
    assert await ids(manager, "?date_before=2026-12-01") == [third["id"], first["id"]]
    assert await ids(manager, f"?shift={shift['id']}") == [second["id"]]
    assert await ids(operator, "?date_after=2026-12-01") == [second["id"]]
    bad = await manager.get("/api/time-entries/?date_after=soon&status=paid&shift=x")
    assert bad.status_code == 400 and set(bad.json()) == {"date_after", "status", "shift"}


async def test_deleting_a_linked_shift_or_ticket_is_a_change_of_the_entry(login, store) -> None:
    """The database nulls the link (ON DELETE SET NULL); BMS tells it as the entry's change:
    an `updated` event with the link gone, and a history entry."""
    manager = await login("manager")
    admin = await login("admin")
    operator = await login("operator")
    kind = await make_incident_type(manager)
    links = {
        "shift": ("/api/shifts/", await make_shift(manager, user=operator.user["user"])),
        "incident_ticket": (
            "/api/incident-tickets/",
            await make_incident(operator, incident_type=kind["id"]),
        ),
        "service_ticket": ("/api/service-tickets/", await make_service_ticket(operator)),
    }
    for field, (path, linked) in links.items():
        entry = await make_time_entry(operator, **{field: linked["id"]})
        unlinked = await make_time_entry(operator)
        async with store.connection() as conn:
            newest = await conn.fetch_val(sa.select(sa.func.max(events.c.id)))
        assert (await admin.delete(f"{path}{linked['id']}/")).status_code == 204

        async with store.connection() as conn:
            rows = await conn.fetch_all(
                sa.select(events)
                .where(events.c.id > newest, events.c.topic == "time-entries")
                .order_by(events.c.id)
            )
            changes = await conn.fetch_all(
                sa.select(history.c.changes).where(
                    history.c.subject == "time-entries", history.c.subject_id == entry["id"]
                )
            )
        assert [(row["action"], row["object_id"]) for row in rows] == [("updated", entry["id"])]
        sent = orjson.loads(rows[0]["data"])
        assert (
            sent[field] is None
            and sent == (await operator.get(f"/api/time-entries/{entry['id']}/")).json()
        )
        assert rows[0]["owner_id"] == operator.user["user"]
        assert [row["changes"] for row in changes] == [{field: [linked["id"], None]}]
        assert (await operator.get(f"/api/time-entries/{unlinked['id']}/")).json() == unlinked


async def test_a_managers_totals_follow_every_change(login, store) -> None:
    """The manager's list counts once per newest time-entries event."""
    manager = await login("manager")
    admin = await login("admin")
    operator = await login("operator")
    shift = await make_shift(manager, user=operator.user["user"])
    made = [await make_time_entry(operator, shift=shift["id"]) for _ in range(3)]

    async def count(query: str = "") -> int:
        response = await manager.get(f"/api/time-entries/?page_size=1{query}")
        assert response.status_code == 200, response.text
        return response.json()["count"]

    assert await count() == 3 and await count("&status=draft") == 3
    # A row removed behind the unit of work's back (no event) is still counted: the total
    # was counted once and is reused while no time-entries event is newer.
    async with store.connection() as conn:
        await conn.execute(sa.delete(time_entries).where(time_entries.c.id == made[0]["id"]))
    assert await count() == 3
    submitted = await operator.patch(
        f"/api/time-entries/{made[1]['id']}/", json={"status": "submitted"}
    )
    assert submitted.status_code == 200, submitted.text
    assert await count("&status=draft") == 1 and await count("&status=submitted") == 1
    assert await count(f"&shift={shift['id']}") == 2
    assert (await admin.delete(f"/api/shifts/{shift['id']}/")).status_code == 204
    assert await count(f"&shift={shift['id']}") == 0 and await count() == 2
