"""In-app notifications (own only), mirrored to email unless the user opted out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from databases.core import Connection
from pydantic import StrictBool

from db.statements import DetailQuery
from db.tables import notifications, profiles, users
from db.types import Row
from db.uow import UnitOfWork
from domain.actors import Actor
from domain.emails import queue_email
from domain.errors import NotFound
from domain.resource import ResourceRules
from domain.schemas import Schema, check_if_match, validate

TOPIC = "notifications"
TITLE_MAX_CHARS = 200
LINK_MAX_CHARS = 200


class NotificationPatch(Schema):
    read: StrictBool


def serialize(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "kind": row["kind"],
        "title": row["title"],
        "body": row["body"],
        "link": row["link"],
        "read": row["read"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def list_query(actor: Actor) -> sa.Select[Any]:
    """Everyone, admins included, sees only their own notifications."""
    return sa.select(notifications).where(notifications.c.user_id == actor.id)


# The detail read (`list_query` for one id): built once, only the ids change.
_DETAIL = DetailQuery.of(
    sa.select(notifications), notifications.c.id, owner_column=notifications.c.user_id
)


async def get_notification(
    conn: Connection, actor: Actor, notification_id: int
) -> dict[str, Any] | None:
    row = await conn.fetch_one(_DETAIL.owned_by(actor.id, notification_id))
    return serialize(row) if row else None


async def _email_address(conn: Connection, user_id: int) -> str | None:
    """The user's address if they have one, are active and did not opt out."""
    row = await conn.fetch_one(
        sa.select(users.c.email, users.c.is_active, profiles.c.email_notifications)
        .select_from(users.outerjoin(profiles, profiles.c.user_id == users.c.id))
        .where(users.c.id == user_id)
    )
    if row is None or not row[0] or not row[1] or row[2] is False:
        return None
    address: str = row[0]
    return address


async def manager_ids(conn: Connection) -> set[int]:
    """Active users with at least the manager role (told about escalations and conflicts)."""
    rows = await conn.fetch_all(
        sa.select(users.c.id).where(users.c.role.in_(("manager", "admin")), users.c.is_active)
    )
    return {row[0] for row in rows}


async def notify(
    uow: UnitOfWork, *, user_id: int, kind: str, title: str, body: str = "", link: str = ""
) -> dict[str, Any]:
    """Notify one user in this transaction: row + `notifications` event + email after commit."""
    title = title[:TITLE_MAX_CHARS]
    notification_id = await uow.conn.execute(
        notifications.insert().values(
            user_id=user_id,
            kind=kind[:32],
            title=title,
            body=body,
            link=link[:LINK_MAX_CHARS],
            read=False,
            created_at=uow.now,
            updated_at=uow.now,
        )
    )
    created = {
        "id": notification_id,
        "kind": kind[:32],
        "title": title,
        "body": body,
        "link": link[:LINK_MAX_CHARS],
        "read": False,
        "created_at": uow.now,
        "updated_at": uow.now,
    }
    uow.emit(TOPIC, "created", object_id=notification_id, data=created, owner_id=user_id,
             private=True)  # fmt: skip
    address = await _email_address(uow.conn, user_id)
    if address:
        text = f"{body}\n\n{link}" if link else body
        await queue_email(uow, to=[address], subject=title, body=text, requested_by=None)
    return created


async def notify_many(
    uow: UnitOfWork, *, user_ids: set[int] | list[int], kind: str, title: str, body: str = "",
    link: str = "",
) -> list[dict[str, Any]]:  # fmt: skip
    """Notify each user once (duplicates in `user_ids` are collapsed)."""
    return [
        await notify(uow, user_id=uid, kind=kind, title=title, body=body, link=link)
        for uid in sorted(set(user_ids))
    ]


async def update_notification(
    uow: UnitOfWork,
    actor: Actor,
    notification_id: int,
    data: Mapping[str, Any],
    *,
    partial: bool,
    if_match: str | None = None,
) -> dict[str, Any]:
    """PATCH/PUT `{"read": bool}`; only the owner, others get 404."""
    current = await get_notification(uow.conn, actor, notification_id=notification_id)
    if current is None:
        raise NotFound()
    check_if_match(current, if_match)
    values = validate(NotificationPatch, {"read": current["read"], **data})
    if values.read == current["read"]:
        return current
    await uow.conn.execute(
        notifications.update()
        .where(notifications.c.id == notification_id)
        .values(read=values.read, updated_at=uow.now)
    )
    updated = {**current, "read": values.read, "updated_at": uow.now}
    uow.emit(TOPIC, "updated", object_id=notification_id, data=updated, owner_id=actor.id,
             private=True)  # fmt: skip
    return updated


async def mark_all_read(uow: UnitOfWork, actor: Actor) -> int:
    """Mark every unread notification of the actor read; one `updated` event per row."""
    rows = await uow.conn.fetch_all(
        list_query(actor).where(notifications.c.read == sa.false()).order_by(notifications.c.id)
    )
    if not rows:
        return 0
    ids = [row["id"] for row in rows]
    await uow.conn.execute(
        notifications.update()
        .where(notifications.c.id.in_(ids))
        .values(read=True, updated_at=uow.now)
    )
    for row in rows:
        data = {**serialize(row), "read": True, "updated_at": uow.now}
        uow.emit(TOPIC, "updated", object_id=data["id"], data=data, owner_id=actor.id,
                 private=True)  # fmt: skip
    return len(ids)


# What api/ declares the REST resource from (domain/resource.py).
RULES = ResourceRules(
    serialize=serialize,
    list_query=list_query,
    get=get_notification,
    update=update_notification,
)
