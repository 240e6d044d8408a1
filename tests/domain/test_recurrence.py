"""RRULE validation for recurring shifts and events (no database)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.errors import ValidationFailed
from domain.recurrence import parse_rrule

START = datetime(2026, 12, 1, 8, tzinfo=UTC)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("FREQ=WEEKLY;BYDAY=MO,TU;COUNT=10", "FREQ=WEEKLY;BYDAY=MO,TU;COUNT=10"),
        (" RRULE:FREQ=DAILY;INTERVAL=2 ", "FREQ=DAILY;INTERVAL=2"),
        ("rrule:FREQ=MONTHLY;UNTIL=20271231T000000Z", "FREQ=MONTHLY;UNTIL=20271231T000000Z"),
        ("FREQ=YEARLY", "FREQ=YEARLY"),
    ],
)
async def test_valid_rules_are_normalized(given: str, stored: str) -> None:
    assert await parse_rrule(given, dtstart=START, timezone="Europe/London") == stored


@pytest.mark.parametrize(
    "rule",
    [
        "",
        "FREQ=",
        "BYDAY=MO",
        "FREQ=WEEKLY;BYDAY=FUNDAY",
        "FREQ=SECONDLY",
        "FREQ=HOURLY;COUNT=2",
        "FREQ=DAILY;COUNT=0",
        "FREQ=DAILY;UNTIL=20261130T000000Z",
        "FREQ=DAILY;UNTIL=20271231T000000",
        "FREQ=DAILY\nRDATE:20261205T080000Z",
        "X" * 600,
    ],
)
async def test_invalid_rules_fail_on_recurrence(rule: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await parse_rrule(rule, dtstart=START, timezone="Europe/London")
    assert list(caught.value.errors) == ["recurrence"]
