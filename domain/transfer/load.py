"""Import JSON Lines: validate every row with the API's schemas, resolve references by the
file's ids or by natural keys, write everything in one transaction or nothing.

Rows are inserted as they are (status, stamps and numbers included): an import reproduces
the data, it does not replay the workflow. Errors are collected for every line, each in a
savepoint, so one run reports all of them; any error (or a dry run) rolls everything back.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import functools
import re
import secrets
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from pydantic import AwareDatetime, TypeAdapter, ValidationError

from db.backup.marker import RESTORE_TOPIC
from db.errors import constraint_violation
from db.local_days import covered_days
from db.store import Store
from db.tables import (
    counters,
    facilities,
    incident_tickets,
    incident_types,
    locations,
    profiles,
    scheduled_event_attendees,
    service_tickets,
    users,
)
from db.uow import UnitOfWork
from domain.avatars import prepare_avatar
from domain.errors import ValidationFailed
from domain.numbers import format_number, next_value
from domain.profile_images import IMAGE_DIR, image_dir
from domain.recurrence import DEFAULT_TIMEZONE, facility_timezone
from domain.references import invalid_pk
from domain.schemas import validate, validation_failed
from domain.transfer.kinds import BY_NAME, CREDENTIALS_TYPE, IMAGE_TYPE, USERS, Kind

REQUIRED = "This field is required."
_NUMBER = re.compile(r"[A-Z]+-(\d+)\Z")
# String references name rows by their natural key.
_NATURAL = {
    "locations": locations.c.name,
    "facilities": facilities.c.name,
    "incident-types": incident_types.c.name,
    "incident-tickets": incident_tickets.c.number,
    "service-tickets": service_tickets.c.number,
}
_AWARE: TypeAdapter[dt.datetime] = TypeAdapter(AwareDatetime)
# Kinds with unique constraints the checks above do not cover in full: each row in a
# savepoint (small tables). Bulk kinds are validated and resolved before their one INSERT.
SAVEPOINT_KINDS = frozenset(
    {"locations", "profiles", "facilities", "incident-types", CREDENTIALS_TYPE, IMAGE_TYPE}
)
BATCH_ROWS = 500
_PREFIXES = {"incident-tickets": "INC", "service-tickets": "SRV"}


@dataclass(frozen=True)
class LoadError:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.message}"


@dataclass
class LoadReport:
    created: Counter[str] = field(default_factory=Counter)
    matched: Counter[str] = field(default_factory=Counter)  # existing rows reused by key
    errors: list[LoadError] = field(default_factory=list)
    lines: int = 0


@functools.cache
def _adapter(annotation: Any) -> TypeAdapter[Any]:
    """Building a TypeAdapter costs about a millisecond: once per type, not per row."""
    return TypeAdapter(annotation)


@dataclass
class _Pending:
    line: int
    row: dict[str, Any]
    data: dict[str, Any]
    attendees: list[int]


class _Abort(Exception):
    """A row failed in a way that ends the transaction: report what was found so far."""


class _Rollback(Exception):
    """Leaves the unit of work without committing (errors, or a dry run)."""


class _RowError(Exception):
    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors


def _fail(field_name: str, message: str) -> _RowError:
    return _RowError({field_name: [message]})


class Loader:
    """Feeds one file's lines into one open unit of work."""

    def __init__(self, uow: UnitOfWork, *, media_root: Path) -> None:
        self.uow = uow
        self.conn = uow.conn
        self.media_root = media_root
        self.ids: dict[str, dict[Any, int]] = {}  # kind -> file id or natural key -> new id
        self.created_users: set[str] = set()
        self.numbers: dict[str, int] = {}  # counter -> highest imported number
        self.taken_numbers: dict[str, set[str]] = {}
        self.pending: list[_Pending] = []  # rows of `pending_kind` queued for one INSERT
        self.pending_kind: Kind | None = None
        self.line = 0
        self.priorities: dict[int, str] = {}
        self.zones: dict[int, str] = {}  # facility id -> its location's time zone
        self.written: list[Path] = []
        self.report = LoadReport()

    # -- references ---------------------------------------------------------------------

    async def _resolve(self, target: str, field_name: str, value: Any) -> int:
        known = self.ids.setdefault(target, {})
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise _fail(field_name, invalid_pk(value))
        if value in known:
            return known[value]
        if isinstance(value, str):
            column = users.c.username if target == USERS else _NATURAL.get(target)
            if column is not None:
                found = await self.conn.fetch_all(
                    sa.select(column.table.c.id).where(column == value).limit(2)
                )
                if len(found) == 1:
                    return int(found[0]["id"])
        raise _fail(field_name, invalid_pk(value))

    async def _resolved(self, kind: Kind, data: dict[str, Any]) -> dict[str, Any]:
        out = dict(data)
        errors: dict[str, list[str]] = {}
        for name, target in kind.refs.items():
            if out.get(name) is not None:
                try:
                    out[name] = await self._resolve(target, name, out[name])
                except _RowError as exc:
                    errors.update(exc.errors)
        if kind.name == "scheduled-events" and isinstance(out.get("attendees"), list):
            try:
                out["attendees"] = [
                    await self._resolve(USERS, "attendees", a) for a in out["attendees"]
                ]
            except _RowError as exc:
                errors.update(exc.errors)
        if errors:
            raise _RowError(errors)
        return out

    # -- rows -----------------------------------------------------------------------------

    def _values(self, kind: Kind, data: dict[str, Any]) -> dict[str, Any]:
        """Schema fields (the API's validation) plus the kept read-only fields, as columns."""
        values: dict[str, Any] = {}
        if kind.schema is not None:
            values.update(validate(kind.schema, data).model_dump())
        errors: dict[str, list[str]] = {}
        for name, annotation in kind.extras.items():
            if data.get(name) is None:
                column = kind.table.c.get(kind.columns.get(name, name))
                if column is not None and column.nullable and name in data:
                    values[name] = None  # same columns in every row: batches stay whole
                continue
            try:
                values[name] = _adapter(annotation).validate_python(data[name])
            except ValidationError as exc:
                found = validation_failed(exc).errors
                errors[name] = [message for messages in found.values() for message in messages]
        if errors:
            raise _RowError(errors)
        values.update(self._stamps(values))
        columns = kind.table.c
        return {
            kind.columns.get(name, name): value
            for name, value in values.items()
            if kind.columns.get(name, name) in columns
        }

    def _stamps(self, values: dict[str, Any]) -> dict[str, Any]:
        """`created_at`/`updated_at` as given (validated), else now."""
        stamps = {}
        for name in ("created_at", "updated_at"):
            value = values.get(name)
            if value is not None and not isinstance(value, dt.datetime):
                try:
                    value = _AWARE.validate_python(value)
                except ValidationError:
                    raise _fail(
                        name, "Datetime has wrong format. Use ISO 8601 with an offset."
                    ) from None
            stamps[name] = value
        stamps["created_at"] = stamps["created_at"] or self.uow.now
        stamps["updated_at"] = stamps["updated_at"] or stamps["created_at"]
        return stamps

    async def _existing(self, kind: Kind, row: dict[str, Any]) -> int | None:
        if not kind.key:
            return None
        if kind.ticket_counter is not None and row["number"] not in await self._taken(kind):
            return None  # the common case answered from memory: no query per ticket
        await self.flush()  # the earlier row with this key may still be queued
        cols = [kind.columns.get(k, k) for k in kind.key]
        if any(row.get(c) is None for c in cols):
            return None
        where = [kind.table.c[c] == row[c] for c in cols]
        found = await self.conn.fetch_val(sa.select(kind.table.c.id).where(*where))
        return None if found is None else int(found)

    async def _taken(self, kind: Kind) -> set[str]:
        """Ticket numbers of `kind` in the database (read once), plus those imported since."""
        taken = self.taken_numbers.get(kind.name)
        if taken is None:
            rows = await self.conn.fetch_all(sa.select(kind.table.c.number))
            taken = self.taken_numbers[kind.name] = {str(r["number"]) for r in rows}
        return taken

    async def _default_priority(self, type_id: int) -> str:
        if type_id not in self.priorities:
            self.priorities[type_id] = str(
                await self.conn.fetch_val(
                    sa.select(incident_types.c.default_priority).where(
                        incident_types.c.id == type_id
                    )
                )
            )
        return self.priorities[type_id]

    async def _ticket_fields(self, kind: Kind, row: dict[str, Any]) -> None:
        by = "reported_by" if kind.name == "incident-tickets" else "requested_by"
        if row.get(by) is None:
            raise _fail(by, REQUIRED)
        assert kind.ticket_counter is not None
        if row.get("number") is None:
            value = await next_value(self.uow, name=kind.ticket_counter)
            row["number"] = format_number(_PREFIXES[kind.name], value)
        elif match := _NUMBER.match(row["number"]):
            top = self.numbers.get(kind.ticket_counter, 0)
            self.numbers[kind.ticket_counter] = max(top, int(match[1]))
        else:
            raise _fail("number", f'"{row["number"]}" is not a ticket number.')
        if kind.name == "incident-tickets":
            row.setdefault("occurred_at", self.uow.now)
            if row.get("occurred_at") is None:
                row["occurred_at"] = self.uow.now
            if row.get("priority") is None:
                row["priority"] = await self._default_priority(row["incident_type_id"])

    async def _insert(self, kind: Kind, data: dict[str, Any]) -> None:
        resolved = await self._resolved(kind, data)
        row = self._values(kind, resolved)
        if kind.ticket_counter is not None:
            await self._ticket_fields(kind, row)
        if kind.name.endswith("-ticket-comments"):
            row["subject"] = kind.refs["ticket"]
            for name in ("author_id", "subject_id"):
                if row.get(name) is None:
                    raise _fail(name.removesuffix("_id").replace("subject", "ticket"), REQUIRED)
        if kind.name == "time-entries":
            if row.get("user_id") is None:
                raise _fail("user", REQUIRED)
            if row.get("date") is None:
                row["date"] = row["start"].date()
        if kind.name == "shifts":
            facility_id = row["facility_id"]  # resolved: the facility exists
            if facility_id not in self.zones:
                zone = await facility_timezone(self.conn, facility_id=facility_id)
                self.zones[facility_id] = zone or DEFAULT_TIMEZONE
            row.update(covered_days(row["start"], row["end"], self.zones[facility_id]))
        if kind.name in ("time-off-requests", "notifications") and row.get("user_id") is None:
            raise _fail("user", REQUIRED)
        existing = await self._existing(kind, row)
        if existing is not None:
            self._remember(kind.name, data, existing)
            self.report.matched[kind.name] += 1
            return
        if kind.name in SAVEPOINT_KINDS:  # inside this row's savepoint, now
            new_id = int(await self.conn.execute(kind.table.insert().values(**row)))
            self._remember(kind.name, data, new_id)
            self.report.created[kind.name] += 1
            return
        if kind.ticket_counter is not None:
            (await self._taken(kind)).add(row["number"])
        attendees = list(dict.fromkeys(resolved.get("attendees") or []))
        self.pending.append(_Pending(self.line, row, data, attendees))
        if len(self.pending) >= BATCH_ROWS:
            await self.flush()

    async def flush(self) -> None:
        """Insert the queued rows of one kind: one multi-row INSERT per set of columns."""
        if not self.pending:
            return
        kind, batch = self.pending_kind, self.pending
        assert kind is not None
        self.pending = []
        # Runs of rows with the same columns, in file order (ids keep the file's order).
        groups: list[list[_Pending]] = []
        for item in batch:
            if groups and groups[-1][0].row.keys() == item.row.keys():
                groups[-1].append(item)
            else:
                groups.append([item])
        try:
            for group in groups:
                new_ids = await self._insert_rows(kind.table, [item.row for item in group])
                links: list[dict[str, Any]] = []
                for item, new_id in zip(group, new_ids, strict=True):
                    self._remember(kind.name, item.data, new_id)
                    links += [{"event_id": new_id, "user_id": u} for u in item.attendees]
                if links:
                    await self._insert_rows(scheduled_event_attendees, links, ids=False)
                self.report.created[kind.name] += len(group)
        except Exception as exc:
            violation = constraint_violation(exc)
            if violation is None:
                raise
            name = ", ".join(violation.columns) or "non_field_errors"
            message = (
                f"a row of lines {batch[0].line}-{batch[-1].line} breaks a "
                f"{violation.kind} constraint of {kind.name}"
            )
            self.report.errors.append(LoadError(batch[0].line, name, message))
            raise _Abort from None

    async def _insert_rows(
        self, table: sa.Table, rows: list[dict[str, Any]], *, ids: bool = True
    ) -> list[int]:
        """Insert rows (same columns) and return their new ids in row order.

        PostgreSQL: ids taken from the sequence first, then one pipelined executemany on the
        raw connection (same transaction): building a 500-row multi-VALUES statement in
        SQLAlchemy cost more CPU than the rows themselves. SQLite (in-process, no round
        trips): one multi-row INSERT ... RETURNING, ids sorted back into row order.
        """
        if not self.uow.store.is_postgres:
            if not ids:
                await self.conn.execute(table.insert().values(rows))
                return []
            result = await self.conn.fetch_all(table.insert().values(rows).returning(table.c.id))
            return sorted(int(r["id"]) for r in result)
        raw = self.conn.raw_connection
        columns = list(rows[0])
        new_ids: list[int] = []
        if ids:
            taken = await raw.fetch(
                "SELECT nextval(pg_get_serial_sequence($1, 'id')) FROM generate_series(1, $2::int)",
                table.name,
                len(rows),
            )
            new_ids = sorted(int(r[0]) for r in taken)
            columns = ["id", *columns]
            rows = [{"id": i, **row} for i, row in zip(new_ids, rows, strict=True)]
        names = ", ".join(f'"{name}"' for name in columns)
        marks = ", ".join(f"${n}" for n in range(1, len(columns) + 1))
        # Table and column names come from db/tables.py, never from the file.
        sql = f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})'  # noqa: S608
        await raw.executemany(sql, [tuple(row[c] for c in columns) for row in rows])
        return new_ids

    def _remember(self, kind_name: str, data: dict[str, Any], new_id: int) -> None:
        known = self.ids.setdefault(kind_name, {})
        if isinstance(data.get("id"), int):
            known[data["id"]] = new_id
        natural = _NATURAL.get(kind_name)
        if natural is not None and isinstance(data.get(natural.name), str):
            known[data[natural.name]] = new_id

    async def _profile(self, data: dict[str, Any]) -> None:
        kind = BY_NAME["profiles"]
        resolved = await self._resolved(kind, data)
        values = validate(kind.schema, resolved).model_dump()  # type: ignore[arg-type]
        username = values["username"]
        existing = await self.conn.fetch_one(
            sa.select(users.c.id, profiles.c.id.label("profile_id"))
            .select_from(users.join(profiles, profiles.c.user_id == users.c.id))
            .where(users.c.username == username)
        )
        if existing is not None:
            user_id, profile_id = int(existing["id"]), int(existing["profile_id"])
            self.report.matched["profiles"] += 1
        else:
            stamps = self._stamps(data)
            user_id = int(
                await self.conn.execute(
                    users.insert().values(
                        username=username,
                        email=values["email"],
                        first_name=values["first_name"],
                        last_name=values["last_name"],
                        role=values["role"],
                        is_active=values["is_active"],
                        # No usable password until a credentials line or a reset sets one.
                        password_hash="!" + secrets.token_hex(16),
                        credentials_changed_at=self.uow.now,
                        **stamps,
                    )
                )
            )
            profile_id = int(
                await self.conn.execute(
                    profiles.insert().values(
                        user_id=user_id,
                        title=values["title"],
                        department=values["department"],
                        phone=values["phone"],
                        location_id=values["location"],
                        email_notifications=values["email_notifications"],
                        **stamps,
                    )
                )
            )
            self.created_users.add(username)
            self.report.created["profiles"] += 1
        known_users = self.ids.setdefault(USERS, {})
        known_users[username] = user_id
        if isinstance(data.get("user"), int):
            known_users[data["user"]] = user_id
        if isinstance(data.get("id"), int):
            self.ids.setdefault("profiles", {})[data["id"]] = profile_id

    async def _credentials(self, data: dict[str, Any]) -> None:
        username, hashed = data.get("username"), data.get("password_hash")
        if not isinstance(username, str) or not isinstance(hashed, str) or not hashed:
            raise _fail("password_hash", REQUIRED)
        if username in self.created_users:  # never overwrite an existing user's password
            await self.conn.execute(
                users.update().where(users.c.username == username).values(password_hash=hashed)
            )

    async def _image(self, data: dict[str, Any]) -> None:
        profile_id = await self._resolve("profiles", "profile", data.get("profile"))
        try:
            content = base64.b64decode(str(data.get("content_base64", "")), validate=True)
        except (binascii.Error, ValueError):
            raise _fail("content_base64", "Not valid base64.") from None
        extension, content = prepare_avatar(content)  # as an upload: checked, re-encoded
        folder = image_dir(self.media_root)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{profile_id}-{secrets.token_hex(16)}.{extension}"
        (folder / name).write_bytes(content)
        self.written.append(folder / name)
        await self.conn.execute(
            profiles.update()
            .where(profiles.c.id == profile_id)
            .values(profile_image=f"{IMAGE_DIR}/{name}")
        )
        self.report.created[IMAGE_TYPE] += 1

    async def feed(self, number: int, raw: bytes) -> None:
        """Validate and write one line; record its errors instead of raising."""
        self.report.lines += 1
        if not raw.strip():
            return
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            self.report.errors.append(LoadError(number, "line", f"not valid JSON ({exc})"))
            return
        kind_name = obj.get("type") if isinstance(obj, dict) else None
        data = obj.get("data") if isinstance(obj, dict) else None
        if kind_name not in BY_NAME and kind_name not in (IMAGE_TYPE, CREDENTIALS_TYPE):
            self.report.errors.append(LoadError(number, "type", f"unknown type {kind_name!r}"))
            return
        if not isinstance(data, dict):
            self.report.errors.append(LoadError(number, "data", "must be a JSON object"))
            return
        if self.pending_kind is None or kind_name != self.pending_kind.name:
            await self.flush()  # later rows may refer to the queued ones
            self.pending_kind = BY_NAME.get(kind_name)
        self.line = number
        guarded = kind_name in SAVEPOINT_KINDS
        try:
            if guarded:  # a savepoint: a row that breaks a unique constraint leaves no trace
                async with self.conn.transaction():
                    await self._dispatch(kind_name, data)
            else:  # validated and resolved up front: one round trip per row, no savepoint
                await self._dispatch(kind_name, data)
        except (_RowError, ValidationFailed) as exc:
            for name, messages in exc.errors.items():
                for message in messages:
                    self.report.errors.append(LoadError(number, name, message))
        except Exception as exc:
            violation = constraint_violation(exc)
            if violation is None:
                raise
            name = ", ".join(violation.columns) or "non_field_errors"
            message = f"breaks a {violation.kind} constraint of {kind_name}"
            self.report.errors.append(LoadError(number, name, message))
            if not guarded:  # the transaction cannot go on: stop here, write nothing
                raise _Abort from None

    async def _dispatch(self, kind_name: str, data: dict[str, Any]) -> None:
        if kind_name == "profiles":
            await self._profile(data)
        elif kind_name == CREDENTIALS_TYPE:
            await self._credentials(data)
        elif kind_name == IMAGE_TYPE:
            await self._image(data)
        else:
            await self._insert(BY_NAME[kind_name], data)

    async def finish(self) -> None:
        """Counters move past every imported ticket number (numbers are never reused)."""
        for name, top in self.numbers.items():
            current = await self.conn.fetch_val(
                sa.select(counters.c.value).where(counters.c.name == name)
            )
            if current is None:
                await self.conn.execute(counters.insert().values(name=name, value=top))
            elif int(current) < top:
                await self.conn.execute(
                    counters.update().where(counters.c.name == name).values(value=top)
                )

    def discard_files(self) -> None:
        for path in self.written:
            with contextlib.suppress(OSError):
                path.unlink()


async def load_lines(
    store: Store,
    lines: Iterable[bytes],
    *,
    media_root: Path,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> LoadReport:
    """Import `lines` all-or-nothing; the report lists every error with its line and field."""
    loader: Loader | None = None
    try:
        async with store.unit_of_work(actor_id=None) as uow:
            loader = Loader(uow, media_root=media_root)
            try:
                for number, raw in enumerate(lines, start=1):
                    await loader.feed(number, raw)
                    if progress is not None:
                        progress(len(raw))
                await loader.flush()
            except _Abort:
                raise _Rollback from None
            await loader.finish()
            if loader.report.errors or dry_run:
                raise _Rollback
            # Rows arrived without their events: a client resuming from before the import
            # is told to refetch (the hub answers resync_required below this marker).
            uow.emit(RESTORE_TOPIC, "imported", object_id=0, data={"id": 0})
    except _Rollback:
        if loader is not None:
            loader.discard_files()
    except BaseException:
        if loader is not None:
            loader.discard_files()
        raise
    assert loader is not None
    return loader.report
