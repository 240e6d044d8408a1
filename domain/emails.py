"""The email outbox, request side: a queued email is a row first, so a Redis or worker crash
loses nothing; its send task is enqueued through the unit of work once the row is committed.
How the task is handed to the broker (in the background, with a timeout) is the task
runtime's business (tasks/runtime.py), not this module's."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from email.utils import parseaddr
from typing import Any

import sqlalchemy as sa
from databases.core import Connection
from pydantic import Field, field_validator

from db.tables import emails
from db.types import Row
from db.uow import UnitOfWork
from domain.actors import Actor, Role
from domain.limits import LongText
from domain.schemas import Schema, validate

MAX_RECIPIENTS = 50
SUBJECT_MAX_CHARS = 255
BODY_MAX_CHARS = 100_000
# The task that delivers one queued email (registered by tasks/runtime.py).
SEND_EMAIL_TASK = "bms.send_email"


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
    body: LongText = Field(max_length=BODY_MAX_CHARS)

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


def serialize(row: Row) -> dict[str, Any]:
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
    uow.enqueue(SEND_EMAIL_TASK, email_id)
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
