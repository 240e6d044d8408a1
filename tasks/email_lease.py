"""Keep a sending worker's claim alive, and record a send's outcome even across a database cut.

Together they make the duplicate window of an email one network round trip wide: a live
sender renews its short lease (so a dead one's email is retried in seconds, and a slow but
alive one is never overtaken), and the SMTP server's acceptance is written right after its
250 and retried until the database answers again (contract section 5).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog

from db.errors import is_connection_lost
from db.store import Store
from domain.email_delivery import finish_email, renew_lease

log = structlog.get_logger("bms.email")

# A few renewals per lease: one late write does not lose it.
RENEWALS_PER_LEASE = 3
# Recording the outcome: backoff from 0.1 s doubling to 2 s, for about half a minute.
RECORD_RETRY_BASE_SECS = 0.1
RECORD_RETRY_CAP_SECS = 2.0
RECORD_ATTEMPTS = 20


@asynccontextmanager
async def lease_renewed(
    store: Store, *, email_id: int, attempts: int, lease_secs: float
) -> AsyncIterator[None]:
    """Renew the claim every `lease_secs / 3` while the body runs (the SMTP exchange)."""

    async def renew_forever() -> None:
        while True:
            await asyncio.sleep(lease_secs / RENEWALS_PER_LEASE)
            try:
                await renew_lease(store, email_id=email_id, attempts=attempts)
            except Exception as exc:  # the next renewal tries again; the send goes on
                log.warning("email lease renewal failed", id=email_id, error=str(exc))

    renewer = asyncio.create_task(renew_forever(), name=f"bms-email-lease-{email_id}")
    try:
        yield
    finally:
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer


async def record_outcome(store: Store, **outcome: Any) -> None:
    """`finish_email(**outcome)`, retried while the database connection is what failed."""
    for attempt in range(1, RECORD_ATTEMPTS + 1):
        try:
            await finish_email(store, **outcome)
            return
        except Exception as exc:
            if attempt == RECORD_ATTEMPTS or not is_connection_lost(exc):
                raise
            wait = min(RECORD_RETRY_CAP_SECS, RECORD_RETRY_BASE_SECS * 2 ** (attempt - 1))
            log.warning(
                "could not record the email's outcome; retrying",
                id=outcome.get("email_id"), status=outcome.get("status"), attempt=attempt,
                next_try_in_secs=wait, error=f"{type(exc).__name__}: {exc}",
            )  # fmt: skip
            await asyncio.sleep(wait)
