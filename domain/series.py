"""Materialize recurring series into shift and scheduled-event rows for a rolling horizon."""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import structlog
from databases.core import Connection
from dateutil.rrule import rruleset, rrulestr

from db.store import Store
from db.tables import scheduled_event_attendees, scheduled_events, series, shifts
from db.types import Row
from db.uow import UnitOfWork
from domain import local_days
from domain.notifications import manager_ids, notify, notify_many
from domain.offload import BudgetExceeded, run_isolated, within_budget
from domain.scheduled_events import TOPIC as EVENTS_TOPIC
from domain.scheduled_events import get_scheduled_event
from domain.shifts import TOPIC as SHIFTS_TOPIC
from domain.shifts import find_overlap, get_shift, lock_user_schedule
from domain.time_off import conflicts_followed

log = structlog.get_logger("bms.series")
# Local-time window margin: converting UTC bounds to wall clock can be off by a DST jump.
_MARGIN = timedelta(days=1)
# One pass materializes a rolling horizon of days: more than this is a runaway rule.
MAX_OCCURRENCES_PER_PASS = 2000
SERIES_CPU_BUDGET_SECS = 2.0
_DT_RE = re.compile(r"^\d{8}(T\d{6}Z?)?$")


@dataclass
class SeriesReport:
    """What one materialization pass did for one series."""

    series_id: int
    created: list[int] = field(default_factory=list)
    skipped: list[datetime] = field(default_factory=list)


def _parse_ical_dt(value: str, tz: ZoneInfo, tzid: str | None) -> datetime:
    """An iCalendar DATE/DATE-TIME (UTC `Z`, TZID or floating) as naive wall-clock in `tz`."""
    value = value.strip()
    if not _DT_RE.match(value):
        raise ValueError(f"bad date-time {value!r}")
    if "T" not in value:
        return datetime.strptime(value, "%Y%m%d")
    parsed = datetime.strptime(value.rstrip("Z"), "%Y%m%dT%H%M%S")
    if value.endswith("Z"):
        parsed = parsed.replace(tzinfo=UTC)
    elif tzid:
        parsed = parsed.replace(tzinfo=ZoneInfo(tzid))
    else:
        return parsed
    return parsed.astimezone(tz).replace(tzinfo=None)


def build_rule(text: str, *, dtstart: datetime, timezone: str) -> rruleset:
    """RRULE (+ optional EXDATE/RDATE lines) evaluated in wall-clock time of `timezone`."""
    tz = ZoneInfo(timezone)
    local_start = dtstart.astimezone(tz).replace(tzinfo=None)
    rules: list[str] = []
    exdates: list[datetime] = []
    rdates: list[datetime] = []
    for raw in re.split(r"[\r\n]+", text.strip()):
        line = raw.strip()
        if not line:
            continue
        name, _, value = line.partition(":") if ":" in line else ("RRULE", "", line)
        head, *params = name.upper().split(";")
        tzid = next((p.split("=", 1)[1] for p in params if p.startswith("TZID=")), None)
        if head == "RRULE":
            # UNTIL in UTC (as RFC 5545 asks) becomes wall-clock time like DTSTART.
            def _until(match: re.Match[str]) -> str:
                local = _parse_ical_dt(match.group(1), tz, None)
                return "UNTIL=" + local.strftime("%Y%m%dT%H%M%S")

            rules.append(re.sub(r"UNTIL=([0-9TZ]+)", _until, value.upper()))
        elif head in ("EXDATE", "RDATE"):
            target = exdates if head == "EXDATE" else rdates
            for item in value.split(","):
                moment = _parse_ical_dt(item, tz, tzid)
                if "T" not in item:  # a DATE drops the occurrence on that day at DTSTART's time
                    moment = datetime.combine(moment.date(), local_start.time())
                target.append(moment)
    if not rules:
        raise ValueError("no RRULE")
    rule_set = rruleset()
    for rule in rules:
        # rrulestr returns rrule | rruleset; single RRULE lines were checked by parse_rrule.
        rule_set.rrule(rrulestr(rule, dtstart=local_start))  # type: ignore[arg-type]
    for moment in exdates:
        rule_set.exdate(moment)
    for moment in rdates:
        rule_set.rdate(moment)
    return rule_set


def occurrences(
    text: str, *, dtstart: datetime, timezone: str, after: datetime, until: datetime
) -> list[datetime]:
    """UTC starts in (after, until]; wall-clock time is kept across DST changes.

    Bounded: at most MAX_OCCURRENCES_PER_PASS, within SERIES_CPU_BUDGET_SECS of CPU time
    (ValueError otherwise), so one rule cannot hold the worker.
    """
    tz = ZoneInfo(timezone)
    rule = build_rule(text, dtstart=dtstart, timezone=timezone)
    lo = (after.astimezone(tz) - _MARGIN).replace(tzinfo=None)
    hi = (until.astimezone(tz) + _MARGIN).replace(tzinfo=None)

    def expand() -> list[datetime]:
        upto_hi = itertools.takewhile(lambda local: local <= hi, rule.xafter(lo, inc=True))
        return list(itertools.islice(upto_hi, MAX_OCCURRENCES_PER_PASS))

    try:
        locals_ = within_budget(expand, cpu_secs=SERIES_CPU_BUDGET_SECS)
    except BudgetExceeded:
        raise ValueError("the recurrence rule took too long to evaluate") from None
    found = []
    for local in locals_:
        # fold=0: an ambiguous time is its first instance; a skipped one moves past the gap.
        moment = local.replace(tzinfo=tz).astimezone(UTC)
        if after < moment <= until:
            found.append(moment)
    return found


def _tpl(template: Mapping[str, Any], *names: str, default: Any = None) -> Any:
    """Templates may name fields as the API does (`user`) or as columns (`user_id`)."""
    for name in names:
        if name in template:
            return template[name]
    return default


async def _existing_starts(conn: Connection, table: sa.Table, series_id: int) -> set[datetime]:
    rows = await conn.fetch_all(sa.select(table.c.start).where(table.c.series_id == series_id))
    return {row[0] for row in rows}


async def _add_shift(uow: UnitOfWork, s: Row, start: datetime, report: SeriesReport) -> None:
    tpl = s["template"] or {}
    end = start + timedelta(seconds=s["duration_secs"])
    user_id = _tpl(tpl, "user_id", "user")
    await lock_user_schedule(uow, user_id=user_id)  # the same lock as API-created shifts
    clash = await find_overlap(uow.conn, user_id=user_id, start=start, end=end)
    if clash is not None:
        if clash["start"] != start or clash["end"] != end:  # the series' own first shift is fine
            report.skipped.append(start)
        return
    values = {
        "user_id": user_id,
        "facility_id": _tpl(tpl, "facility_id", "facility"),
        "position": _tpl(tpl, "position", default=""),
        "notes": _tpl(tpl, "notes", default=""),
        "start": start,
        "end": end,
        "status": "scheduled",
        "series_id": s["id"],
        "created_at": uow.now,
        "updated_at": uow.now,
    }
    values.update(await local_days.shift_columns(uow.conn, values))
    shift_id = await uow.conn.execute(shifts.insert().values(**values))
    report.created.append(shift_id)
    data = await get_shift(uow.conn, None, shift_id=shift_id)
    uow.emit(SHIFTS_TOPIC, "created", object_id=shift_id, data=data or {"id": shift_id})


async def _add_event(uow: UnitOfWork, s: Row, start: datetime, report: SeriesReport) -> None:
    tpl = s["template"] or {}
    values = {
        "title": _tpl(tpl, "title", default=""),
        "description": _tpl(tpl, "description", default=""),
        "kind": _tpl(tpl, "kind", default="other"),
        "facility_id": _tpl(tpl, "facility_id", "facility"),
        "all_day": bool(_tpl(tpl, "all_day", default=False)),
        "created_by": _tpl(tpl, "created_by", default=s["created_by"]),
        "start": start,
        "end": start + timedelta(seconds=s["duration_secs"]),
        "series_id": s["id"],
        "created_at": uow.now,
        "updated_at": uow.now,
    }
    event_id = await uow.conn.execute(scheduled_events.insert().values(**values))
    attendees = sorted({int(u) for u in _tpl(tpl, "attendees", default=[]) or []})
    for user_id in attendees:
        await uow.conn.execute(
            scheduled_event_attendees.insert().values(event_id=event_id, user_id=user_id)
        )
    report.created.append(event_id)
    data = await get_scheduled_event(uow.conn, None, event_id=event_id)
    uow.emit(EVENTS_TOPIC, "created", object_id=event_id, data=data or {"id": event_id})


async def _report_skipped(uow: UnitOfWork, s: Row, skipped: list[datetime]) -> None:
    when = ", ".join(moment.strftime("%Y-%m-%d %H:%M UTC") for moment in skipped[:20])
    more = f" and {len(skipped) - 20} more" if len(skipped) > 20 else ""
    user_id = _tpl(s["template"] or {}, "user_id", "user")
    await notify_many(
        uow,
        user_ids=await manager_ids(uow.conn),
        kind="series_conflict",
        title=f"Recurring shift series #{s['id']}: {len(skipped)} occurrence(s) skipped",
        body=f"User {user_id} already has a shift overlapping: {when}{more}.",
        link=f"/api/shifts/?series={s['id']}",
    )


async def _tell_user(uow: UnitOfWork, s: Row, count: int) -> None:
    """One summary per pass, not one notification (and email) per occurrence."""
    await notify(
        uow,
        user_id=_tpl(s["template"] or {}, "user_id", "user"),
        kind="shift_created",
        title=f"{count} new shift(s) scheduled for you",
        body=f"Recurring series #{s['id']} was extended with {count} shift(s).",
        link=f"/api/shifts/?series={s['id']}",
    )


async def materialize_one(
    store: Store, *, series_id: int, horizon_days: int, now: datetime | None = None
) -> SeriesReport:
    """Create the missing occurrences of one series up to now + horizon; safe to repeat."""
    report = SeriesReport(series_id)
    async with store.unit_of_work(actor_id=None) as uow:
        now = now or uow.now
        query = sa.select(series).where(series.c.id == series_id)
        row = await uow.conn.fetch_one(query.with_for_update() if store.is_postgres else query)
        if row is None:
            return report
        s = row
        horizon = now + timedelta(days=horizon_days)
        done = s["materialized_until"]
        if done is not None and done >= horizon:
            return report
        after = done if done is not None else s["dtstart"] - timedelta(seconds=1)
        starts = await run_isolated(
            functools.partial(
                occurrences,
                s["rrule"],
                dtstart=s["dtstart"],
                timezone=s["timezone"],
                after=after,
                until=horizon,
            )
        )
        table = shifts if s["kind"] == "shift" else scheduled_events
        existing = await _existing_starts(uow.conn, table, series_id)
        add = _add_shift if s["kind"] == "shift" else _add_event
        user_id = _tpl(s["template"] or {}, "user_id", "user") if s["kind"] == "shift" else None
        async with conflicts_followed(uow, user_ids=[user_id]):
            for start in starts:
                if start not in existing:
                    await add(uow, s, start, report)
        await uow.conn.execute(
            series.update().where(series.c.id == series_id).values(materialized_until=horizon)
        )
        if report.skipped:
            await _report_skipped(uow, s, report.skipped)
        if report.created and s["kind"] == "shift":
            await _tell_user(uow, s, len(report.created))
    return report


async def materialize_all(
    store: Store, *, horizon_days: int, now: datetime | None = None
) -> list[SeriesReport]:
    """Advance every series whose horizon is short; one transaction per series."""
    now = now or store.clock()
    horizon = now + timedelta(days=horizon_days)
    async with store.connection() as conn:
        rows = await conn.fetch_all(
            sa.select(series.c.id)
            .where(
                sa.or_(series.c.materialized_until.is_(None), series.c.materialized_until < horizon)
            )
            .order_by(series.c.id)
        )
    reports = []
    for row in rows:
        try:
            reports.append(
                await materialize_one(store, series_id=row[0], horizon_days=horizon_days, now=now)
            )
        except ValueError as exc:  # one broken rule must not stop the others
            log.error("cannot materialize series", series_id=row[0], error=str(exc))
    return reports
