"""Recurring shifts and events: validate an RFC 5545 RRULE and store its `series` row."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from databases.core import Connection
from dateutil.rrule import DAILY, rrule, rrulestr

from db.tables import facilities, locations, profiles, series
from db.uow import UnitOfWork
from domain.errors import ValidationFailed
from domain.limits import check_text
from domain.offload import BudgetExceeded, run_isolated, within_budget

FIELD = "recurrence"
RRULE_MAX_CHARS = 500
DEFAULT_TIMEZONE = "UTC"
# Occurrences are whole shifts or events: anything finer than daily is a mistake.
_FINEST_FREQ = DAILY
_PARSE_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError)
# dateutil scans up to year 9999 for a rule that never matches (FREQ=DAILY;BYMONTH=2;
# BYMONTHDAY=30 took 3.6 s): a rule must show its first occurrence within this CPU time.
# A real one does in well under a millisecond (a leap day that is a Monday: ~10 ms).
RRULE_CPU_BUDGET_SECS = 0.05
TOO_COMPLEX = "The recurrence is too complex to evaluate; simplify it."


class RuleRejected(ValueError):
    """Why a rule was refused: one message, so it crosses the process boundary intact."""


async def parse_rrule(text: str, *, dtstart: datetime, timezone: str) -> str:
    """Return the normalized RRULE (no `RRULE:` prefix) or raise 400 on `recurrence`.

    Evaluated in the pure-Python worker process under a CPU-time budget: a pathological rule
    costs the server at most RRULE_CPU_BUDGET_SECS of that process, and the event loop
    nothing (not even the GIL).
    """
    try:
        return await run_isolated(_parse_rrule, text, dtstart, timezone)
    except RuleRejected as exc:
        raise ValidationFailed.on(FIELD, str(exc)) from None


def _parse_rrule(text: str, dtstart: datetime, timezone: str) -> str:
    rule_text = text.strip()
    if rule_text.upper().startswith("RRULE:"):
        rule_text = rule_text[len("RRULE:") :]
    if not rule_text or len(rule_text) > RRULE_MAX_CHARS:
        raise RuleRejected("Enter an RFC 5545 RRULE, e.g. FREQ=WEEKLY;BYDAY=MO,TU;COUNT=10.")
    try:
        check_text(rule_text)
    except ValueError as exc:
        raise RuleRejected(str(exc)) from None
    if ":" in rule_text:
        raise RuleRejected("Give a single RRULE line; DTSTART, RDATE and EXDATE are not accepted.")
    local_start = dtstart.astimezone(ZoneInfo(timezone))
    try:
        rule = rrulestr(rule_text, dtstart=local_start)
    except _PARSE_ERRORS as exc:
        raise RuleRejected(f"Not a valid RRULE: {exc}") from None
    if not isinstance(rule, rrule):
        raise RuleRejected("Give a single RRULE.")
    if rule._freq > _FINEST_FREQ:  # type: ignore[attr-defined]  # dateutil has no public getter; YEARLY=0 ... SECONDLY=6
        raise RuleRejected("Recurrences more frequent than daily are not supported.")
    try:
        first = within_budget(lambda: next(iter(rule), None), cpu_secs=RRULE_CPU_BUDGET_SECS)
    except _PARSE_ERRORS as exc:
        raise RuleRejected(f"Not a valid RRULE: {exc}") from None
    except BudgetExceeded:
        raise RuleRejected(TOO_COMPLEX) from None
    if first is None:
        raise RuleRejected("The recurrence produces no occurrences.")
    return rule_text


async def precheck_rrule(data: Mapping[str, Any], *, dtstart: datetime | None) -> None:
    """Reject a bad `recurrence` before the write's transaction opens (400 on `recurrence`).

    Evaluated in UTC: the rule is evaluated again in the series' zone inside the transaction,
    cheaply then, since a rule that is impossible or too complex was refused here.
    """
    raw = data.get("recurrence")
    if isinstance(raw, str) and raw and dtstart is not None:
        await parse_rrule(raw, dtstart=dtstart, timezone=DEFAULT_TIMEZONE)


async def facility_timezone(conn: Connection, *, facility_id: int | None) -> str | None:
    """The IANA zone of a facility's location (None when there is no such facility)."""
    if facility_id is None:
        return None
    zone: str | None = await conn.fetch_val(
        sa.select(locations.c.timezone)
        .select_from(facilities.join(locations, locations.c.id == facilities.c.location_id))
        .where(facilities.c.id == facility_id)
    )
    return zone


async def user_timezone(conn: Connection, *, user_id: int) -> str | None:
    """The IANA zone of a user's profile location, if set."""
    zone: str | None = await conn.fetch_val(
        sa.select(locations.c.timezone)
        .select_from(profiles.join(locations, locations.c.id == profiles.c.location_id))
        .where(profiles.c.user_id == user_id)
    )
    return zone


async def create_series(
    uow: UnitOfWork,
    *,
    kind: str,
    rrule_text: str,
    dtstart: datetime,
    duration_secs: int,
    timezone: str,
    template: Mapping[str, Any],
    created_by: int | None,
) -> int:
    """Insert the `series` row the recurring job materializes; return its id."""
    series_id: int = await uow.conn.execute(
        series.insert().values(
            kind=kind,
            rrule=rrule_text,
            dtstart=dtstart,
            duration_secs=duration_secs,
            timezone=timezone,
            template=dict(template),
            materialized_until=dtstart,
            created_by=created_by,
            created_at=uow.now,
            updated_at=uow.now,
        )
    )
    return series_id
