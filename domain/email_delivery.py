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
    created_at: datetime


@dataclass(frozen=True, slots=True)
class EmailState:
    status: str
    attempts: int
    updated_at: datetime
    next_attempt_at: datetime | None


async def claim_email(store: Store, *, email_id: int, lease_secs: float) -> ClaimedEmail | None:
    """Atomically move a due queued email (or a dead sender's expired lease) to sending;
    None if it is not ours to send now."""
    now = store.clock()
    stale = now - timedelta(seconds=lease_secs)
    due = sa.or_(emails.c.next_attempt_at.is_(None), emails.c.next_attempt_at <= now)
    query = (
        emails.update()
        .where(
            emails.c.id == email_id,
            sa.or_(
                sa.and_(emails.c.status == "queued", due),
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
        m["id"], m["to"], m["subject"], m["body"], m["attempts"], m["idempotency_key"],
        m["created_at"],
    )  # fmt: skip


async def email_state(store: Store, *, email_id: int) -> EmailState | None:
    """Where an email stands, or None when it does not exist."""
    columns = (emails.c.status, emails.c.attempts, emails.c.updated_at, emails.c.next_attempt_at)
    async with store.connection() as conn:
        row = await conn.fetch_one(sa.select(*columns).where(emails.c.id == email_id))
    if row is None:
        return None
    return EmailState(row["status"], row["attempts"], row["updated_at"], row["next_attempt_at"])


async def finish_email(
    store: Store,
    *,
    email_id: int,
    attempts: int,
    status: str,
    error: str = "",
    next_attempt_at: datetime | None = None,
) -> None:
    """Record the outcome of the claim holding `attempts` (a stale holder changes nothing)."""
    now = store.clock()
    values: dict[str, Any] = {
        "status": status,
        "error": error[:2000],
        "updated_at": now,
        "next_attempt_at": next_attempt_at,
    }
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


async def renew_lease(store: Store, *, email_id: int, attempts: int) -> bool:
    """Extend the claim holding `attempts` (a sender still at work); False if it was lost."""
    async with store.connection() as conn:
        renewed = await conn.fetch_one(
            emails.update()
            .where(
                emails.c.id == email_id,
                emails.c.status == "sending",
                emails.c.attempts == attempts,
            )
            .values(updated_at=store.clock())
            .returning(emails.c.id)
        )
    return renewed is not None


async def stale_email_ids(store: Store, *, older_than: datetime, lease_secs: float) -> list[int]:
    """Emails queued and overdue (enqueue or delayed retry lost) or whose sender died: the
    sweep enqueues them again. A retry waiting for its time is not overdue."""
    lease_cutoff = store.clock() - timedelta(seconds=lease_secs)
    due_since = sa.func.coalesce(emails.c.next_attempt_at, emails.c.updated_at)
    async with store.connection() as conn:
        rows = await conn.fetch_all(
            sa.select(emails.c.id)
            .where(
                sa.or_(
                    sa.and_(emails.c.status == "queued", due_since < older_than),
                    sa.and_(emails.c.status == "sending", emails.c.updated_at < lease_cutoff),
                )
            )
            .order_by(emails.c.id)
            .limit(1000)
        )
    return [row[0] for row in rows]
