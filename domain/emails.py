"""The email outbox: a queued email is a row first, so a Redis or worker crash loses nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

import sqlalchemy as sa
import structlog
from databases.core import Connection
from pydantic import Field, field_validator

from db.tables import emails
from db.uow import UnitOfWork
from domain.actors import Actor, Role
from domain.schemas import Schema, validate

if TYPE_CHECKING:
    from db.store import Store

log = structlog.get_logger("bms.emails")

MAX_RECIPIENTS = 50
SUBJECT_MAX_CHARS = 255
BODY_MAX_CHARS = 100_000
# Enqueueing runs inside a request after commit: never let a slow Redis hold it up.
DISPATCH_TIMEOUT_SECS = 1.0

EmailDispatcher = Callable[[int], Awaitable[None]]
# One dispatcher (the task broker's enqueue) per store; absent = the outbox sweep sends it.
_dispatchers: WeakKeyDictionary[Store, EmailDispatcher] = WeakKeyDictionary()


def set_dispatcher(store: Store, dispatcher: EmailDispatcher | None) -> EmailDispatcher | None:
    """Install (None: remove) how this process hands committed emails over; return the old one."""
    previous = _dispatchers.pop(store, None)
    if dispatcher is not None:
        _dispatchers[store] = dispatcher
    return previous


def is_valid_address(address: str) -> bool:
    """A plain `local@domain.tld` address: no display names, no header injection."""
    if not address or len(address) > 254 or any(c in address for c in "\r\n<>,; \t\"'"):
        return False
    name, parsed = parseaddr(address)
    if name or parsed != address or parsed.count("@") != 1:
        return False
    local, domain = parsed.split("@")
    labels = domain.split(".")
    return bool(local) and len(labels) >= 2 and all(labels) and len(labels[-1]) >= 2


class EmailIn(Schema):
    to: list[str] = Field(min_length=1, max_length=MAX_RECIPIENTS)
    subject: str = Field(min_length=1, max_length=SUBJECT_MAX_CHARS)
    body: str = Field(max_length=BODY_MAX_CHARS)

    @field_validator("to")
    @classmethod
    def _valid_recipients(cls, addresses: list[str]) -> list[str]:
        bad = [a for a in addresses if not isinstance(a, str) or not is_valid_address(a)]
        if bad:
            raise ValueError(f'Enter valid email addresses: "{bad[0]}" is not one.')
        return list(dict.fromkeys(addresses))

    @field_validator("subject")
    @classmethod
    def _one_line(cls, subject: str) -> str:
        if "\r" in subject or "\n" in subject:
            raise ValueError("The subject must be a single line.")
        return subject


def serialize(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "to": row["to"],
        "subject": row["subject"],
        "status": "queued" if row["status"] == "sending" else row["status"],
        "attempts": row["attempts"],
        "sent_at": row["sent_at"],
        "error": row["error"] or None,
    }


async def get_email(conn: Connection, actor: Actor, *, email_id: int) -> dict[str, Any] | None:
    """Managers and admins read any email (they are the ones who may send)."""
    actor.require(Role.MANAGER)
    row = await conn.fetch_one(sa.select(emails).where(emails.c.id == email_id))
    return serialize(row) if row else None


async def queue_email(
    uow: UnitOfWork, *, to: list[str], subject: str, body: str, requested_by: int | None
) -> dict[str, Any]:
    """Write the outbox row; the send task is enqueued only once this transaction commits."""
    key = uuid.uuid4().hex
    email_id = await uow.conn.execute(
        emails.insert().values(
            to=to,
            subject=subject,
            body=body,
            status="queued",
            attempts=0,
            idempotency_key=key,
            requested_by=requested_by,
            created_at=uow.now,
            updated_at=uow.now,
        )
    )
    store = uow.store

    async def enqueue_after_commit() -> None:
        dispatch_soon(store, email_id)

    uow.after_commit(enqueue_after_commit)
    return {
        "id": email_id,
        "to": to,
        "subject": subject,
        "status": "queued",
        "attempts": 0,
        "sent_at": None,
        "error": None,
    }


async def send_email(uow: UnitOfWork, actor: Actor, data: Mapping[str, Any]) -> dict[str, Any]:
    """POST /api/send-email/: managers and admins only, recipients validated."""
    actor.require(Role.MANAGER)
    values = validate(EmailIn, data)
    return await queue_email(
        uow, to=values.to, subject=values.subject, body=values.body, requested_by=actor.id
    )


# Enqueues still in flight; the request that committed does not wait for Redis.
_in_flight: set[asyncio.Task[None]] = set()


def dispatch_soon(store: Store, email_id: int) -> None:
    """Enqueue in the background: the outbox row already guarantees the email is not lost."""
    dispatcher = _dispatchers.get(store)
    if dispatcher is None:
        return
    task = asyncio.get_running_loop().create_task(_dispatch_with(dispatcher, email_id))
    _in_flight.add(task)
    task.add_done_callback(_in_flight.discard)


async def drain_dispatches(timeout_secs: float = DISPATCH_TIMEOUT_SECS) -> None:
    """Let pending enqueues finish before the broker shuts down."""
    if _in_flight:
        await asyncio.wait(list(_in_flight), timeout=timeout_secs)


async def dispatch(store: Store, email_id: int) -> None:
    """Enqueue the send task now; on failure the row stays queued and the sweep retries it."""
    dispatcher = _dispatchers.get(store)
    if dispatcher is not None:
        await _dispatch_with(dispatcher, email_id)


async def _dispatch_with(dispatcher: EmailDispatcher, email_id: int) -> None:
    try:
        async with asyncio.timeout(DISPATCH_TIMEOUT_SECS):
            await dispatcher(email_id)
    except Exception as exc:  # a committed write never fails because the queue did
        log.warning(
            "email enqueue failed; the outbox sweep will retry", id=email_id, error=str(exc)
        )


# --- worker side: claim, finish --------------------------------------------------------------


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
