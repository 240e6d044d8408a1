"""Job: re-enqueue emails whose enqueue (or delayed retry) was lost or whose sender died;
fail the ones whose retry horizon is spent."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from db.effects import Effects, QueuedTask
from db.store import Store
from db.tables import emails
from domain.email_delivery import stale_email_ids
from domain.emails import SEND_EMAIL_TASK
from tasks.config import TaskSettings


async def _fail_exhausted(store: Store, settings: TaskSettings) -> int:
    now = store.clock()
    lease_cutoff = now - timedelta(seconds=settings.email_lease_secs)
    horizon_start = now - timedelta(seconds=settings.email_retry_horizon_secs)
    async with store.connection() as conn:
        gone = await conn.fetch_all(
            emails.update()
            .where(
                emails.c.status.in_(("queued", "sending")),
                emails.c.created_at < horizon_start,
                sa.or_(emails.c.status == "queued", emails.c.updated_at < lease_cutoff),
            )
            .values(status="failed", updated_at=now, next_attempt_at=None,
                    error=sa.func.coalesce(emails.c.error, "")
                    + " (not sent within the retry horizon)")
            .returning(emails.c.id)
        )  # fmt: skip
    return len(gone)


async def run(store: Store, settings: TaskSettings) -> dict[str, Any]:
    failed = await _fail_exhausted(store, settings)
    ids = await stale_email_ids(
        store,
        older_than=store.clock() - timedelta(seconds=settings.stale_queued_secs),
        lease_secs=settings.email_lease_secs,
    )
    # The rows are committed already: straight to the sink, as a unit of work would.
    await store.sink.deliver(Effects(tasks=[QueuedTask(SEND_EMAIL_TASK, (i,)) for i in ids]))
    return {"requeued": ids, "failed": failed}
