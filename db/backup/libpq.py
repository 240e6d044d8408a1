"""Run PostgreSQL client programs with the URL's credentials in their environment, never argv."""

from __future__ import annotations

import os
import shutil

from sqlalchemy.engine import make_url

from db.backup.manifest import ArchiveError

# URL query options libpq also reads from the environment.
_QUERY_ENV = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "application_name": "PGAPPNAME",
    "connect_timeout": "PGCONNECT_TIMEOUT",
}


def libpq_env(database_url: str) -> dict[str, str]:
    """The process environment plus PGHOST/PGUSER/PGPASSWORD/... taken from the URL.

    A password on the command line would be visible to every user of the machine (ps).
    """
    url = make_url(database_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    values = {
        "PGHOST": url.host,
        "PGPORT": str(url.port) if url.port else None,
        "PGUSER": url.username,
        "PGPASSWORD": url.password,
        "PGDATABASE": url.database,
    }
    for key, name in _QUERY_ENV.items():
        option = url.query.get(key)
        values[name] = option if isinstance(option, str) else None
    env.update({k: str(v) for k, v in values.items() if v})
    return env


def client_program(name: str) -> str:
    """The path of `pg_dump`/`pg_restore`, or a one-line error saying what to install."""
    path = shutil.which(name)
    if path is None:
        raise ArchiveError(
            f"{name} not found: install the PostgreSQL client (e.g. postgresql-client)"
        )
    return path
