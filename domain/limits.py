"""Input limits every edge applies (CONTRACT §5): text characters, integer and calendar ranges.

Schemas get them through `domain.schemas.Schema`; query filters, path ids and the WebSocket
use the functions here, so one rule gives one message everywhere, on both backends.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from typing import Annotated, Any

# Integer columns are 32-bit on PostgreSQL; SQLite is held to the same range so both
# backends accept the same input.
INT_MIN = -(2**31)
INT_MAX = 2**31 - 1
EVENT_ID_MAX = 2**63 - 1  # event ids are 64-bit (db.types.BigID)

# A day's margin at each end of the calendar: any zone's local time and a day's arithmetic
# on an accepted value stay representable (Python's datetime stops at 0001 and 9999).
DATE_MIN = date(1, 1, 2)
DATE_MAX = date(9999, 12, 30)
DATETIME_MIN = datetime.combine(DATE_MIN, time(), tzinfo=UTC)
DATETIME_MAX = datetime.combine(DATE_MAX, time.max, tzinfo=UTC)

# One-line text: no C0/C1 control character, DEL, line/paragraph separator or lone surrogate.
_ONE_LINE_BAD = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# Long text also accepts tab, LF and CR.
_LONG_TEXT_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# Secrets (passwords) are hashed, never stored: only what no storage or hash takes.
_SECRET_BAD = re.compile("[\x00\ud800-\udfff]")

NUL_MESSAGE = "Null characters are not allowed."
CONTROL_MESSAGE = "Control characters are not allowed."
INT_MESSAGE = f"Ensure this value is between {INT_MIN} and {INT_MAX}."
DATETIME_MESSAGE = (
    f"Datetime must fall between {DATE_MIN.isoformat()} and {DATE_MAX.isoformat()} (UTC)."
)
DATE_MESSAGE = f"Date must fall between {DATE_MIN.isoformat()} and {DATE_MAX.isoformat()}."


class TextRule:
    """A marker in `Annotated[str, ...]` choosing which characters a text field accepts."""

    def __init__(self, name: str, bad: re.Pattern[str]) -> None:
        self.name = name
        self.bad = bad

    def __repr__(self) -> str:
        return f"TextRule({self.name})"


ONE_LINE = TextRule("one_line", _ONE_LINE_BAD)
MULTILINE = TextRule("multiline", _LONG_TEXT_BAD)
SECRET = TextRule("secret", _SECRET_BAD)

# Plain `str` fields of a Schema are one-line; these mark the exceptions.
LongText = Annotated[str, MULTILINE]
Secret = Annotated[str, SECRET]


def check_text(value: str, rule: TextRule = ONE_LINE) -> str:
    """Return `value`, or raise ValueError naming what is not allowed in it."""
    if rule.bad.search(value) is None:
        return value
    raise ValueError(NUL_MESSAGE if "\x00" in value else CONTROL_MESSAGE)


def check_int(value: int, *, low: int = INT_MIN, high: int = INT_MAX) -> int:
    """Return `value` if the storage can hold it, else ValueError."""
    if low <= value <= high:
        return value
    if (low, high) == (INT_MIN, INT_MAX):
        raise ValueError(INT_MESSAGE)
    raise ValueError(f"Ensure this value is between {low} and {high}.")


def check_datetime(value: datetime) -> datetime:
    """Return an aware `value` whose UTC instant is inside the calendar's safe range."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise ValueError(DATETIME_MESSAGE) from None
    if not DATETIME_MIN <= utc <= DATETIME_MAX:
        raise ValueError(DATETIME_MESSAGE)
    return value


def check_date(value: date) -> date:
    """Return `value` if a day's arithmetic around it stays inside the calendar."""
    if not DATE_MIN <= value <= DATE_MAX:
        raise ValueError(DATE_MESSAGE)
    return value


def check_value(value: Any, rule: TextRule = ONE_LINE) -> Any:
    """Apply the rule of `value`'s type (lists item by item); other types pass."""
    if isinstance(value, str):
        return check_text(value, rule)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return check_int(value)
    if isinstance(value, datetime):
        return check_datetime(value)
    if isinstance(value, date):
        return check_date(value)
    if isinstance(value, list | tuple | set | frozenset):
        for item in value:
            check_value(item, rule)
    return value


def parse_int(raw: str, *, low: int = INT_MIN, high: int = INT_MAX) -> int:
    """A whole number from text (query strings, CLI), within the storage's range."""
    text = raw.strip()
    if not re.fullmatch(r"[+-]?\d{1,30}", text):
        raise ValueError("Enter a whole number.")
    return check_int(int(text), low=low, high=high)


def parse_id(raw: str) -> int | None:
    """A path id, or None when no stored row can have it (the caller answers 404)."""
    try:
        return parse_int(raw, low=1)
    except ValueError:
        return None
