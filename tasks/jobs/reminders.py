"""Job: remind each user of their shift once, before it starts (the rule: domain/shifts.py)."""

from __future__ import annotations

from typing import Any

from db.store import Store
from domain.shifts import remind_of_shift, shifts_to_remind
from tasks.config import TaskSettings


async def run(store: Store, settings: TaskSettings) -> dict[str, Any]:
    lead_secs = settings.shift_reminder_lead_secs
    async with store.connection() as conn:
        due = await shifts_to_remind(conn, now=store.clock(), lead_secs=lead_secs)
    reminded = []
    for shift_id in due:  # one transaction each: never twice, a failure keeps the others
        async with store.unit_of_work(actor_id=None) as uow:
            if await remind_of_shift(uow, shift_id=shift_id, lead_secs=lead_secs):
                reminded.append(shift_id)
    return {"reminded": reminded}
