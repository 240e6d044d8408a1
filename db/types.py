"""Column types that behave the same on PostgreSQL and SQLite."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeAlias

import orjson
import sqlalchemy as sa
from databases.interfaces import Record
from sqlalchemy.engine import Dialect

JSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


def dumps(value: Any) -> bytes:
    """Serialize to JSON the way every BMS response and event does (UTC as `Z`)."""
    return orjson.dumps(value, option=JSON_OPTIONS)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware datetime stored in UTC; SQLite returns it aware too."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        parsed: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


class JSONText(sa.TypeDecorator[Any]):
    """JSON kept as text (orjson), so an event's payload is serialized exactly once."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if isinstance(value, bytes | bytearray):
            return value.decode()
        return dumps(value).decode()

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return orjson.loads(value)


BigID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


# A fetched row: `databases` hands out Records (read by column name like a mapping).
Row: TypeAlias = Mapping[str, Any] | Record
