"""Comments on both ticket kinds: shape, permissions, pagination, one thread per ticket."""

from __future__ import annotations

import pytest

from tests.builders.tickets import make_incident, make_incident_type, make_service_ticket


@pytest.fixture
async def tickets(login) -> dict[str, dict]:
    manager = await login("manager")
    kind = await make_incident_type(manager)
    return {
        "incident-tickets": await make_incident(manager, incident_type=kind["id"]),
        "service-tickets": await make_service_ticket(manager),
    }


@pytest.mark.parametrize("topic", ["incident-tickets", "service-tickets"])
async def test_comment_shape_permissions_and_pages(login, tickets, topic) -> None:
    url = f"/api/{topic}/{tickets[topic]['id']}/comments/"
    operator = await login("operator")
    first = await operator.post(url, json={"body": "Checked the patch bay", "author": 1})
    assert first.status_code == 201, first.text
    body = first.json()
    assert set(body) == {"id", "author", "body", "created_at"}
    assert body["author"] == operator.user["user"]
    assert body["body"] == "Checked the patch bay"
    assert body["created_at"].endswith("Z")
    second = (await operator.post(url, json={"body": "Second"})).json()
    viewer = await login("viewer")
    assert (await viewer.post(url, json={"body": "x"})).status_code == 403
    page = (await viewer.get(url)).json()
    assert page["count"] == 2 and page["next"] is None and page["previous"] is None
    assert page["results"] == [body, second]  # oldest first
    paged = (await viewer.get(url + "?page_size=1")).json()
    assert paged["results"] == [body]
    assert paged["next"].startswith("http://testserver/") and "page=2" in paged["next"]
    assert (await viewer.get(url + "?page=3")).status_code == 404


async def test_bad_bodies_unknown_tickets_and_separate_threads(login, tickets, client) -> None:
    operator = await login("operator")
    incident_url = f"/api/incident-tickets/{tickets['incident-tickets']['id']}/comments/"
    for bad in ({}, {"body": ""}, {"body": "   "}, {"body": None}):
        response = await operator.post(incident_url, json=bad)
        assert response.status_code == 400, bad
        assert list(response.json()) == ["body"]
    assert (
        await operator.post("/api/incident-tickets/999999/comments/", json={"body": "x"})
    ).status_code == 404
    assert (await operator.get("/api/service-tickets/999999/comments/")).status_code == 404
    assert (await client.get(incident_url)).status_code == 401
    await operator.post(incident_url, json={"body": "Only on the incident"})
    service_url = f"/api/service-tickets/{tickets['service-tickets']['id']}/comments/"
    assert (await operator.get(incident_url)).json()["count"] == 1
    assert (await operator.get(service_url)).json()["count"] == 0
    assert (await operator.delete(incident_url)).status_code == 405
