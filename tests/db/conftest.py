"""Fixtures of the database tests that read plans."""

from __future__ import annotations

import pytest

from domain.incident_tickets import STATUSES as INCIDENT_STATUSES
from domain.service_tickets import STATUSES as SERVICE_STATUSES
from domain.tickets import PRIORITIES
from tests.builders.tickets import insert_incident_type


@pytest.fixture
async def statistics_of_every_status(store, make_user) -> None:
    """PostgreSQL: ANALYZE both ticket tables holding every status and priority alike, then
    empty them (statistics stay until the next ANALYZE). TRUNCATE keeps the statistics of
    the last rows analyzed, e.g. search tests' 10,000 open tickets, which make `status=open`
    look like no filter at all."""
    if not store.is_postgres:
        return
    user = await make_user("admin")
    async with store.unit_of_work(actor_id=None) as uow:
        raw = uow.conn.raw_connection
        type_id = await insert_incident_type(raw, "Every status")
        await raw.execute(
            """
            INSERT INTO incident_tickets (number, title, incident_type_id, priority, status,
                reported_by, occurred_at, created_at, updated_at)
            SELECT 'INC-S' || g, 'Ticket ' || g, $1, ($3::text[])[1 + g % 4],
                ($4::text[])[1 + g % 5], $2, now(), now(), now()
            FROM generate_series(1, 1000) AS g
            """,
            type_id,
            user["user"],
            list(PRIORITIES),
            list(INCIDENT_STATUSES),
        )
        await raw.execute(
            """
            INSERT INTO service_tickets (number, title, category, priority, status,
                requested_by, created_at, updated_at)
            SELECT 'SRV-S' || g, 'Request ' || g, 'repair', ($2::text[])[1 + g % 4],
                ($3::text[])[1 + g % 6], $1, now(), now()
            FROM generate_series(1, 1000) AS g
            """,
            user["user"],
            list(PRIORITIES),
            list(SERVICE_STATUSES),
        )
        await raw.execute("ANALYZE incident_tickets, service_tickets")
        await raw.execute("DELETE FROM incident_tickets WHERE number LIKE 'INC-S%'")
        await raw.execute("DELETE FROM service_tickets WHERE number LIKE 'SRV-S%'")
