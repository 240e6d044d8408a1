"""The email outbox, worker side: claim a queued email, record how its delivery ended, and
find the ones whose enqueue was lost or whose sender died (tasks/email.py, the sweep)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from db.tables import emails

if TYPE_CHECKING:
    from db.store import Store


@dataclass(frozen=True, slots=True)
class ClaimedEmail:
    id: int
    to: list[str]
    subject: str
    body: str
    attempts: int
    idempotency_key: str


async def claim_email(
    store: Store, *, email_id: int, lease_secs: float, max_attempts: int
) -> ClaimedEmail | None:
    """Atomically move queued (or a dead sender's expired lease) to sending; None if not ours."""
    now = store.clock()
    stale = now - timedelta(seconds=lease_secs)
    query = (
        emails.update()
        .where(
            emails.c.id == email_id,
            emails.c.attempts < max_attempts,
            sa.or_(
                emails.c.status == "queued",
                sa.and_(emails.c.status == "sending", emails.c.updated_at < stale),
            ),
        )
        .values(status="sending", attempts=emails.c.attempts + 1, updated_at=now)
        .returning(emails.c.id)
    )
    async with store.connection() as conn, conn.transaction():
        if await conn.fetch_one(query) is None:
            return None
        # RETURNING rows skip the column types' result processing: read the row back.
        row = await conn.fetch_one(sa.select(emails).where(emails.c.id == email_id))
    assert row is not None  # claimed in this very transaction
    m = row
    return ClaimedEmail(
        m["id"], m["to"], m["subject"], m["body"], m["attempts"], m["idempotency_key"]
    )


async def email_state(store: Store, *, email_id: int) -> tuple[str, int, datetime] | None:
    """(status, attempts, updated_at) of an email, or None when it does not exist."""
    async with store.connection() as conn:
        row = await conn.fetch_one(
            sa.select(emails.c.status, emails.c.attempts, emails.c.updated_at).where(
                emails.c.id == email_id
            )
        )
    return (row["status"], row["attempts"], row["updated_at"]) if row else None


async def finish_email(
    store: Store, *, email_id: int, attempts: int, status: str, error: str = ""
) -> None:
    """Record the outcome of the claim holding `attempts` (a stale holder changes nothing)."""
    now = store.clock()
    values: dict[str, Any] = {"status": status, "error": error[:2000], "updated_at": now}
    if status == "sent":
        values["sent_at"] = now
    async with store.connection() as conn, conn.transaction():
        await conn.execute(
            emails.update()
            .where(
                emails.c.id == email_id,
                emails.c.status == "sending",
                emails.c.attempts == attempts,
            )
            .values(**values)
        )


async def stale_email_ids(store: Store, *, older_than: datetime, lease_secs: float) -> list[int]:
    """Emails still queued (enqueue lost) or whose sender died: the sweep enqueues them again."""
    lease_cutoff = store.clock() - timedelta(seconds=lease_secs)
    async with store.connection() as conn:
        rows = await conn.fetch_all(
            sa.select(emails.c.id)
            .where(
                sa.or_(
                    sa.and_(emails.c.status == "queued", emails.c.updated_at < older_than),
                    sa.and_(emails.c.status == "sending", emails.c.updated_at < lease_cutoff),
                )
            )
            .order_by(emails.c.id)
            .limit(1000)
        )
    return [row[0] for row in rows]
