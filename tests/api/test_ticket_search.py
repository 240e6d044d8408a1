"""`?search=` on tickets reads `search_text` (migration 0017): the rows ILIKE on each field
found, on both databases, on every statement that can answer (the plain page, the count,
a page of few matches), and after an edit."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from api import listing
from db.tables import incident_tickets, service_tickets
from tests.builders.tickets import make_incident, make_incident_type, make_service_ticket

TEXTS = [  # (title, description)
    ("Klystron ARC on TX 3", "Crowbar fired twice.\nOperator reset it."),
    ("100% uptime lost", "Feed a"),
    ("under_score in a name", "b-roll lost\nsync LOST"),
    ("Back\\slash path", "C:\\feeds"),
    ("Übertragung gestört", "Straße 5, ÜBERTRAGUNGSWAGEN"),
    ("Feed A", "b-roll"),  # "a b" must not match across the title and the description
    ("Plain", ""),
]
TERMS = [
    "klystron",
    "ARC on",
    "reset IT",
    "%",
    "100%",
    "_",
    "under_",
    "\\",
    "back\\SLASH",
    "übertragung",
    "straße",
    "a b",
    "a\\nb",
    "lost",
    "inc-",
    "SRV-",
    "000",
    "nothing like it",
]


def _matching(table: sa.Table, term: str) -> sa.Select[Any]:
    """What `?search=` meant before `search_text`: ILIKE on each field."""
    pattern = listing._search_pattern(term)
    fields = (table.c.number, table.c.title, table.c.description)
    found = sa.or_(*(field.ilike(pattern, escape="\\") for field in fields))
    return sa.select(table.c.id).where(found).order_by(table.c.created_at.desc(), table.c.id.desc())


async def _searched(client: Any, url: str, term: str) -> tuple[list[int], int]:
    response = await client.get(url, params={"search": term, "page_size": 200})
    assert response.status_code == 200, response.text
    body = response.json()
    return [row["id"] for row in body["results"]], body["count"]


@pytest.mark.parametrize("kind", ["incident", "service"])
async def test_search_finds_what_ilike_on_each_field_finds(store, login, kind) -> None:
    manager = await login("manager")
    if kind == "incident":
        incident_type = (await make_incident_type(manager))["id"]
        table, url = incident_tickets, "/api/incident-tickets/"
        for title, description in TEXTS:
            await make_incident(
                manager, incident_type=incident_type, title=title, description=description
            )
    else:
        table, url = service_tickets, "/api/service-tickets/"
        for title, description in TEXTS:
            await make_service_ticket(manager, title=title, description=description)
    for term in TERMS:
        async with store.connection() as conn:
            expected = [row[0] for row in await conn.fetch_all(_matching(table, term))]
        # The first request counts the term; the next may read the trigram index (few rows).
        for _ in range(2):
            assert await _searched(manager, url, term) == (expected, len(expected)), term
    assert (await _searched(manager, url, "lost"))[1] == 2
    assert (await _searched(manager, url, "a b"))[1] == 0


async def test_search_follows_an_edit(login) -> None:
    manager = await login("manager")
    incident_type = (await make_incident_type(manager))["id"]
    ticket = await make_incident(manager, incident_type=incident_type, title="Dish icing")
    url = f"/api/incident-tickets/{ticket['id']}/"
    response = await manager.patch(url, json={"title": "Mains failure"})
    assert response.status_code == 200, response.text
    assert "search_text" not in response.json()
    assert await _searched(manager, "/api/incident-tickets/", "ICING") == ([], 0)
    assert await _searched(manager, "/api/incident-tickets/", "mains") == ([ticket["id"]], 1)
    response = await manager.patch(url, json={"description": "Generator ICING too"})
    assert response.status_code == 200, response.text
    assert await _searched(manager, "/api/incident-tickets/", "icing") == ([ticket["id"]], 1)
