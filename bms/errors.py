"""Startup and operational failures as one line a person can act on, not a traceback.

`bms.cli.main` prints `bms: <line>` and exits 1 for the failures described here; anything
else is a bug and keeps its traceback. `--debug` or LOG_LEVEL=debug shows it for these too.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import asyncpg
import redis.exceptions
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

POSTGRES_PORT = 5432
REDIS_PORT = 6379
# PostgreSQL's answers to a connection attempt (a wrong database, user, password, or a full
# server); other PostgreSQL errors are bugs or data problems and keep their traceback.
_CONNECT_REFUSALS = (
    asyncpg.InvalidCatalogNameError,
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
)
_NETWORK_ERRNOS = {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.ETIMEDOUT,
    errno.EADDRNOTAVAIL,
}


class StartupError(Exception):
    """A failure already worded for the person who started `bms` (printed as is)."""


_REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def check_port_free(host: str, port: int) -> None:
    """Fail now, in one line, if `host:port` cannot be listened on (uvicorn binds it later)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise StartupError(f"cannot listen on {host}:{port} ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind(address)
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            raise StartupError(f"cannot listen on {host}:{port} ({reason})") from None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and every exception behind it (causes, contexts, driver errors, group members)."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        behind = [current.__cause__, current.__context__, getattr(current, "orig", None)]
        if isinstance(current, BaseExceptionGroup):
            behind.extend(current.exceptions)
        stack.extend(e for e in behind if isinstance(e, BaseException))


def _postgres_address(database_url: str) -> str:
    try:
        url = make_url(database_url)
    except ArgumentError:  # settings validated it; never fail while reporting
        return "the configured address"
    return f"{url.host or 'localhost'}:{url.port or POSTGRES_PORT}"


def _redis_address(redis_url: str) -> str:
    parts = urlsplit(redis_url)
    return f"{parts.hostname or 'localhost'}:{parts.port or REDIS_PORT}"


def _network_reason(exc: BaseException) -> str | None:
    """Why a connection could not be made, if `exc` is a network failure; else None."""
    if isinstance(exc, socket.gaierror):
        return "host not found"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if not isinstance(exc, OSError):
        return None
    # asyncpg tries every address of a name and reports "Multiple exceptions: [Errno 111] ..."
    if exc.errno == errno.ECONNREFUSED or "[Errno 111]" in str(exc):
        return "connection refused"
    if exc.errno in _NETWORK_ERRNOS or isinstance(exc, ConnectionError):
        return (exc.strerror or str(exc)).lower()
    return None


def describe(exc: BaseException, *, database_url: str = "", redis_url: str = "") -> str | None:
    """The one-line account of a known operational failure, or None (a bug: keep the trace)."""
    chain = list(_chain(exc))
    for found in chain:
        if isinstance(found, StartupError):
            return str(found)
    redis_failed = any(isinstance(e, _REDIS_ERRORS) for e in chain)
    for found in chain:
        if isinstance(found, _CONNECT_REFUSALS) and not redis_failed:
            refusal = str(found).strip() or type(found).__name__
            return f"cannot connect to PostgreSQL at {_postgres_address(database_url)} ({refusal})"
    for found in chain:
        reason = _network_reason(found)
        if reason is None:
            continue
        if redis_failed and redis_url:
            return f"cannot connect to Redis at {_redis_address(redis_url)} ({reason})"
        if database_url:
            return f"cannot connect to PostgreSQL at {_postgres_address(database_url)} ({reason})"
    if redis_failed and redis_url:
        return f"cannot connect to Redis at {_redis_address(redis_url)} ({chain[0]})"
    return None
