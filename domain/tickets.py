"""Rules shared by incident and service tickets: priorities, references, history, assignment."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from databases.core import Connection
from sqlalchemy.dialects import postgresql

from db.priorities import PRIORITIES as PRIORITIES  # re-exported: in db/, an index uses it
from db.priorities import priority_rank as priority_rank
from db.statements import (
    bound,
    insert_returning,
    row_columns,
    update_returning,
    value_param,
    value_params,
)
from db.tables import facilities, history, ticket_comments, users
from db.uow import UnitOfWork
from domain import time_entries
from domain.actors import Actor, Role
from domain.errors import NotFound
from domain.notifications import notify
from domain.numbers import NUMBER_DIGITS, next_number, take_next_if
from domain.references import References, all_exist, check_rows, existence_params
from domain.schemas import changed_fields, check_if_match

Priority = Literal["low", "medium", "high", "critical"]

ASSIGNED_KIND = "ticket_assigned"

# Read-only bookkeeping that changes on every write; history would only repeat it.
_UNTRACKED = frozenset({"updated_at"})


@dataclass(frozen=True)
class TicketKind:
    """What tells the two ticket kinds apart in the writes they share."""

    topic: str
    table: sa.Table
    counter: str  # numbers: the counter row and the prefix (INC-000001)
    number_prefix: str
    renamed: Mapping[str, str]  # table column → representation field, where they differ
    serialize: Callable[[Any], dict[str, Any]]  # a row of `table` → its representation

    def as_fields(self, columns: Mapping[str, Any]) -> dict[str, Any]:
        """Table columns → representation field names (to compare before writing)."""
        return {self.renamed.get(key, key): value for key, value in columns.items()}


async def insert_ticket(
    uow: UnitOfWork,
    actor: Actor,
    kind: TicketKind,
    columns: Mapping[str, Any],
    *,
    references: References,
) -> dict[str, Any]:
    """Number and insert a ticket whose `references` exist (else 400 on each that does not,
    as `check_references`), announce it, and tell its assignee."""
    values = {**columns, "created_at": uow.now, "updated_at": uow.now}
    if uow.store.is_postgres:  # checked, numbered and inserted in one statement
        row = await _insert_numbered(uow, kind, values, references)
    else:
        await check_rows(uow.conn, references)
        number = await next_number(uow, name=kind.counter, prefix=kind.number_prefix)
        row = await uow.conn.fetch_one(  # the representation without reading the row again
            insert_returning(kind.table, {**values, "number": number})
        )
    assert row is not None
    created = kind.serialize(row)
    ticket_id = created["id"]
    uow.emit(kind.topic, "created", object_id=ticket_id, data=created)
    await notify_assignee(uow, actor, ticket=created, previous_assignee=None, topic=kind.topic)
    return created


async def _insert_numbered(
    uow: UnitOfWork, kind: TicketKind, values: Mapping[str, Any], references: References
) -> Any:
    """PostgreSQL: the insert runs only if every reference exists, so a create reads nothing
    before it. When it inserted nothing (and took no number), `check_rows` says which
    reference is missing; one added in between (a race) gets the row inserted after all,
    the foreign keys guarding it as they guard every write."""
    params = {
        "counter": kind.counter,
        "prefix": kind.number_prefix,
        **existence_params(references),
        **value_params(values),
    }
    keys = tuple(values)
    tables = tuple(table for table, _ in references.values())
    row = await uow.conn.fetch_one(bound(_numbered_insert(kind.table, keys, tables), **params))
    if row is None:
        await check_rows(uow.conn, references)
        row = await uow.conn.fetch_one(bound(_numbered_insert(kind.table, keys, ()), **params))
    return row


@functools.cache
def _numbered_insert(
    table: sa.Table, keys: tuple[str, ...], references: tuple[sa.Table, ...]
) -> Any:
    """PostgreSQL: take the counter's next value (`numbers.take_next_if`, in a data-modifying
    WITH) if every reference exists (`references.all_exist`), and insert the ticket numbered
    with it, RETURNING the row: one round trip where checking, numbering and inserting took
    three. The number reads as `format_number` writes it."""
    taken = take_next_if(postgresql.insert, all_exist(references)).cte("taken")
    digits = sa.cast(taken.c.value, sa.Text)
    number = (
        sa.bindparam("prefix", type_=sa.Text)
        + "-"
        + sa.case(
            (taken.c.value < 10**NUMBER_DIGITS, sa.func.lpad(digits, NUMBER_DIGITS, "0")),
            else_=digits,
        )
    )
    values = sa.select(*(value_param(table, key) for key in keys), number).select_from(taken)
    return table.insert().from_select([*keys, "number"], values).returning(*row_columns(table))


async def update_ticket(
    uow: UnitOfWork,
    actor: Actor,
    kind: TicketKind,
    current: dict[str, Any],
    columns: Mapping[str, Any],
) -> dict[str, Any]:
    """Write checked columns if they change anything: history, event, a new assignee told."""
    if not history_changes(current, kind.as_fields(columns)):
        return current
    ticket_id = current["id"]
    row = await uow.conn.fetch_one(
        update_returning(kind.table, ticket_id, {**columns, "updated_at": uow.now})
    )
    assert row is not None  # `current` was read in this transaction
    updated = kind.serialize(row)
    await uow.record_history(kind.topic, ticket_id, history_changes(current, updated))
    uow.emit(kind.topic, "updated", object_id=ticket_id, data=updated)
    await notify_assignee(
        uow, actor, ticket=updated, previous_assignee=current["assigned_to"], topic=kind.topic
    )
    return updated


async def delete_ticket(
    uow: UnitOfWork, actor: Actor, kind: TicketKind, ticket_id: int, *, if_match: str | None
) -> None:
    """Delete a ticket with its comments and history (admins).

    Deleted first and checked after (404, If-Match): a refusal rolls the deletes back, and
    a delete costs one statement on PostgreSQL (the thread goes in the same one), after the
    one that detaches its time entries as their change.
    """
    actor.require(Role.ADMIN)
    await time_entries.detach_from(uow, kind.table, ticket_id)  # before the delete nulls them
    if not uow.store.is_postgres:  # SQLite: no data-modifying WITH
        await delete_thread(uow, subject=kind.topic, subject_id=ticket_id)
    statement = _delete_statement(kind.table, with_thread=uow.store.is_postgres)
    row = await uow.conn.fetch_one(bound(statement, subject=kind.topic, ticket_id=ticket_id))
    if row is None:
        raise NotFound()
    check_if_match(kind.serialize(row), if_match)
    uow.emit(kind.topic, "deleted", object_id=ticket_id, data={"id": ticket_id})


@functools.cache
def _delete_statement(table: sa.Table, *, with_thread: bool) -> Any:
    """DELETE the ticket RETURNING it; `with_thread`: its comments and history too, in
    data-modifying WITH clauses of the same statement (PostgreSQL). Built once per table."""
    subject: sa.BindParameter[str] = sa.bindparam("subject")
    ticket_id: sa.BindParameter[int] = sa.bindparam("ticket_id")
    statement = table.delete().where(table.c.id == ticket_id).returning(*row_columns(table))
    if with_thread:
        for thread in (ticket_comments, history):
            gone = thread.delete().where(
                thread.c.subject == subject, thread.c.subject_id == ticket_id
            )
            statement = statement.add_cte(gone.cte(f"gone_{thread.name}"))
    return statement


async def check_references(
    conn: Connection,
    refs: Mapping[str, tuple[sa.Table, int | None]],
    *,
    unchanged: Mapping[str, Any] | None = None,
) -> None:
    """Raise 400 on each field whose id names no row (null means "no reference").

    `unchanged`: the current representation on an update; a reference it already holds
    exists (the foreign key keeps it), so a PATCH of other fields reads nothing here.
    """
    await check_rows(
        conn,
        {
            field: (table, value)
            for field, (table, value) in refs.items()
            if unchanged is None or unchanged.get(field) != value
        },
    )


def common_references(values: Mapping[str, Any]) -> dict[str, tuple[sa.Table, int | None]]:
    """The references both ticket kinds carry: facility and assignee."""
    return {
        "facility": (facilities, values.get("facility")),
        "assigned_to": (users, values.get("assigned_to")),
    }


def history_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Field → [old, new] between two representations, bookkeeping fields left out."""
    return {k: v for k, v in changed_fields(before, after).items() if k not in _UNTRACKED}


async def notify_assignee(
    uow: UnitOfWork,
    actor: Actor,
    *,
    ticket: Mapping[str, Any],
    previous_assignee: int | None,
    topic: str,
) -> None:
    """Tell a user a ticket was just assigned to them (not when they took it themselves)."""
    assignee = ticket["assigned_to"]
    if assignee is None or assignee == previous_assignee or assignee == actor.id:
        return
    await notify(
        uow,
        user_id=assignee,
        kind=ASSIGNED_KIND,
        title=f"{ticket['number']} assigned to you",
        body=ticket["title"],
        link=f"/api/{topic}/{ticket['id']}/",
    )


async def delete_thread(uow: UnitOfWork, *, subject: str, subject_id: int) -> None:
    """Drop a deleted ticket's comments and history: SQLite may hand its id out again."""
    for table in (ticket_comments, history):
        await uow.conn.execute(
            table.delete().where(table.c.subject == subject, table.c.subject_id == subject_id)
        )
