"""Comments on tickets (both kinds): a plain thread, oldest first, written by operators up."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from databases.core import Connection
from pydantic import Field

from db.tables import incident_tickets, service_tickets, ticket_comments
from db.types import Row
from db.uow import UnitOfWork
from domain.actors import Actor, Role
from domain.errors import NotFound, ValidationFailed
from domain.limits import LongText
from domain.schemas import Schema, validate

BODY_MAX_CHARS = 10_000
# Comment subjects are the ticket kinds' topic names.
SUBJECTS: dict[str, sa.Table] = {
    "incident-tickets": incident_tickets,
    "service-tickets": service_tickets,
}


class CommentIn(Schema):
    body: LongText = Field(min_length=1, max_length=BODY_MAX_CHARS)


def serialize(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "author": row["author_id"],
        "body": row["body"],
        "created_at": row["created_at"],
    }


def list_query(*, subject: str, subject_id: int) -> sa.Select[Any]:
    """The comments of one ticket; `subject` is the ticket kind's topic name."""
    return sa.select(ticket_comments).where(
        ticket_comments.c.subject == subject, ticket_comments.c.subject_id == subject_id
    )


async def get_comment(conn: Connection, *, comment_id: int) -> dict[str, Any] | None:
    row = await conn.fetch_one(sa.select(ticket_comments).where(ticket_comments.c.id == comment_id))
    return serialize(row) if row else None


async def require_subject(conn: Connection, *, subject: str, subject_id: int) -> None:
    """Raise NotFound unless the ticket exists."""
    table = SUBJECTS[subject]
    if await conn.fetch_val(sa.select(table.c.id).where(table.c.id == subject_id)) is None:
        raise NotFound()


async def add_comment(
    uow: UnitOfWork, actor: Actor, *, subject: str, subject_id: int, data: Mapping[str, Any]
) -> dict[str, Any]:
    """Add the actor's comment to a ticket (404 if it does not exist)."""
    actor.require(Role.OPERATOR)
    await require_subject(uow.conn, subject=subject, subject_id=subject_id)
    body = validate(CommentIn, data).body
    if not body.strip():
        raise ValidationFailed.on("body", "This field may not be blank.")
    comment_id = await uow.conn.execute(
        ticket_comments.insert().values(
            subject=subject,
            subject_id=subject_id,
            author_id=actor.id,
            body=body,
            created_at=uow.now,
            updated_at=uow.now,
        )
    )
    created = await get_comment(uow.conn, comment_id=comment_id)
    assert created is not None
    return created
