"""Job: escalate urgent incidents left open (the rule: domain/incident_tickets.py)."""

from __future__ import annotations

from typing import Any

from db.store import Store
from domain.incident_tickets import escalate_incident, incidents_to_escalate
from tasks.config import TaskSettings


async def run(store: Store, settings: TaskSettings) -> dict[str, Any]:
    after_secs = settings.escalation_after_secs
    async with store.connection() as conn:
        due = await incidents_to_escalate(conn, now=store.clock(), after_secs=after_secs)
    escalated = []
    for ticket_id in due:  # one transaction each: a failure keeps the others escalated
        async with store.unit_of_work(actor_id=None) as uow:
            if await escalate_incident(uow, ticket_id=ticket_id, after_secs=after_secs):
                escalated.append(ticket_id)
    return {"escalated": escalated}
