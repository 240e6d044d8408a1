"""Job: escalate urgent incidents left open, to every manager and whoever is on shift there."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from bms.settings import Settings
from db.store import Store
from db.tables import incident_tickets as t
from db.tables import shifts
from domain.notifications import notify_many
from domain.series import ACTIVE_SHIFT_STATUSES, manager_ids


def _due(now_cutoff: Any) -> sa.Select[Any]:
    return (
        sa.select(t.c.id)
        .where(
            t.c.status == "open",
            t.c.escalated_at.is_(None),
            sa.or_(t.c.on_air_impact, t.c.priority == "critical"),
            t.c.created_at <= now_cutoff,
        )
        .order_by(t.c.id)
    )


async def escalate_one(store: Store, ticket_id: int, cutoff: Any) -> bool:
    """Claim the ticket (escalated_at IS NULL → now) and notify, in one transaction."""
    async with store.unit_of_work(actor_id=None) as uow:
        claimed = await uow.conn.fetch_one(
            t.update()
            .where(t.c.id == ticket_id, t.c.escalated_at.is_(None), t.c.status == "open",
                   t.c.created_at <= cutoff)
            .values(escalated_at=uow.now)
            .returning(t.c.id, t.c.number, t.c.title, t.c.facility_id, t.c.priority)
        )  # fmt: skip
        if claimed is None:
            return False
        ticket = claimed
        recipients = await manager_ids(uow.conn)
        if ticket["facility_id"] is not None:
            on_shift = await uow.conn.fetch_all(
                sa.select(shifts.c.user_id).where(
                    shifts.c.facility_id == ticket["facility_id"],
                    shifts.c.status.in_(ACTIVE_SHIFT_STATUSES),
                    shifts.c.start <= uow.now,
                    shifts.c.end > uow.now,
                )
            )
            recipients |= {row[0] for row in on_shift}
        await notify_many(
            uow,
            user_ids=recipients,
            kind="incident_escalated",
            title=f"Escalated: {ticket['number']} {ticket['title']}",
            body=f"Incident {ticket['number']} ({ticket['priority']}) is still open.",
            link=f"/api/incident-tickets/{ticket_id}/",
        )
    return True


async def run(store: Store, settings: Settings) -> dict[str, Any]:
    cutoff = store.clock() - timedelta(seconds=settings.escalation_after_secs)
    async with store.connection() as conn:
        ids = [row[0] for row in await conn.fetch_all(_due(cutoff))]
    escalated = [tid for tid in ids if await escalate_one(store, tid, cutoff)]
    return {"escalated": escalated}
