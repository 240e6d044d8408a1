"""Job: remind each user of their shift once, `shift_reminder_lead_secs` before it starts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from bms.settings import Settings
from db.store import Store
from db.tables import shifts
from domain.notifications import notify
from domain.series import ACTIVE_SHIFT_STATUSES


async def remind_one(store: Store, shift_id: int, lead_secs: int) -> bool:
    """Claim (reminded_at IS NULL → now) and notify in one transaction: never twice."""
    async with store.unit_of_work(actor_id=None) as uow:
        claimed = await uow.conn.fetch_one(
            shifts.update()
            .where(
                shifts.c.id == shift_id,
                shifts.c.reminded_at.is_(None),
                shifts.c.status.in_(ACTIVE_SHIFT_STATUSES),
                shifts.c.start > uow.now,
                shifts.c.start <= uow.now + timedelta(seconds=lead_secs),
            )
            .values(reminded_at=uow.now)
            .returning(shifts.c.id)
        )
        if claimed is None:
            return False
        found = await uow.conn.fetch_one(sa.select(shifts).where(shifts.c.id == shift_id))
        row = found
        minutes = max(1, round((row["start"] - uow.now).total_seconds() / 60))
        await notify(
            uow,
            user_id=row["user_id"],
            kind="shift_reminder",
            title=f"Your shift starts in {minutes} minutes",
            body=f"{row['position'] or 'Shift'} starts at {row['start']:%Y-%m-%d %H:%M} UTC.",
            link=f"/api/shifts/{shift_id}/",
        )
    return True


async def run(store: Store, settings: Settings) -> dict[str, Any]:
    now = store.clock()
    lead = settings.shift_reminder_lead_secs
    async with store.connection() as conn:
        rows = await conn.fetch_all(
            sa.select(shifts.c.id)
            .where(
                shifts.c.reminded_at.is_(None),
                shifts.c.status.in_(ACTIVE_SHIFT_STATUSES),
                shifts.c.start > now,
                shifts.c.start <= now + timedelta(seconds=lead),
            )
            .order_by(shifts.c.start)
        )
    reminded = [row[0] for row in rows if await remind_one(store, row[0], lead)]
    return {"reminded": reminded}
