"""Database URL spellings: one URL from the user, the right driver for each consumer."""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url


def async_driver_url(url: str) -> URL:
    """Return the URL with the asyncio driver SQLAlchemy and `databases` both accept."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+asyncpg")
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    raise ValueError(f"unsupported database backend {backend!r}")
