"""Deliver one outbox email: claim it, send it over SMTP (or print it), record the outcome."""

from __future__ import annotations

import random
import sys
from datetime import timedelta
from email.message import EmailMessage
from email.utils import formatdate
from typing import Protocol

import aiosmtplib
import structlog

from db.store import Store
from domain.email_delivery import ClaimedEmail, claim_email, email_state, finish_email
from tasks.config import TaskSettings
from tasks.email_lease import lease_renewed, record_outcome
from tasks.retry_later import RetryLater

log = structlog.get_logger("bms.email")


class EmailBusy(RetryLater):
    """Another worker holds a live lease on the email: retry once the lease could expire."""


class SendFailed(RetryLater):
    """The transport failed for now: the retry middleware kicks the task again once the
    email is due (`retry_after_secs`); the sweep does if that delayed kick is lost."""


class Backend(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


class SMTPBackend:
    """aiosmtplib with implicit TLS or STARTTLS as configured."""

    def __init__(self, settings: TaskSettings) -> None:
        self.settings = settings

    async def send(self, message: EmailMessage) -> None:
        s = self.settings
        await aiosmtplib.send(
            message,
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username or None,
            password=s.smtp_password or None,
            use_tls=s.smtp_use_tls,
            start_tls=None if s.smtp_use_tls else (s.smtp_start_tls or None),
            timeout=s.smtp_timeout_secs,
        )


class ConsoleBackend:
    """Without SMTP_HOST: print the mail as a person reads it (headers, then decoded text)."""

    async def send(self, message: EmailMessage) -> None:
        sys.stdout.write(render_for_console(message))
        sys.stdout.flush()


def render_for_console(message: EmailMessage) -> str:
    """Headers one per line, then the plain-text body decoded (not base64 MIME)."""
    headers = [
        f"{name}: {value}"
        for name, value in message.items()
        if name.lower() != "mime-version" and not name.lower().startswith("content-")
    ]
    body = message.get_body(preferencelist=("plain",))
    text = body.get_content() if isinstance(body, EmailMessage) else ""
    rule = "-" * 72
    return f"{rule}\n" + "\n".join(headers) + f"\n\n{text.rstrip()}\n{rule}\n"


def make_backend(settings: TaskSettings) -> Backend:
    return SMTPBackend(settings) if settings.smtp_host else ConsoleBackend()


def build_message(claimed: ClaimedEmail, *, sender: str) -> EmailMessage:
    """The idempotency key is the Message-ID: receivers can drop a duplicate delivery."""
    domain = sender.rpartition("@")[2] or "bms.localhost"
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(claimed.to)
    message["Subject"] = claimed.subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = f"<{claimed.idempotency_key}@{domain}>"
    message.set_content(claimed.body)
    return message


def is_permanent(exc: BaseException) -> bool:
    """A 5xx answer (for every recipient) will not change on retry; anything else may."""
    refused = getattr(exc, "recipients", None)
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and refused:
        return all(500 <= r.code < 600 for r in refused)
    return isinstance(exc, aiosmtplib.SMTPResponseException) and 500 <= exc.code < 600


def retry_delay_secs(attempt: int, settings: TaskSettings) -> float:
    """Full jitter under a capped exponential ceiling: a shared outage's retries spread out."""
    ceiling = min(
        settings.email_retry_max_secs, settings.email_retry_base_secs * 2 ** (attempt - 1)
    )
    return random.uniform(0, ceiling)


async def deliver(store: Store, settings: TaskSettings, backend: Backend, email_id: int) -> str:
    """Send the email unless someone already did or it is not due; returns its status."""
    claimed = await claim_email(store, email_id=email_id, lease_secs=settings.email_lease_secs)
    if claimed is None:
        state = await email_state(store, email_id=email_id)
        if state and state.status == "sending":
            lease_left = (
                settings.email_lease_secs - (store.clock() - state.updated_at).total_seconds()
            )
            log.info("email busy in another worker; will retry", id=email_id, wait=lease_left)
            raise EmailBusy(f"email {email_id} is being sent by another worker", lease_left)
        # Queued but not due: its own delayed retry (or the sweep) brings it back.
        return state.status if state else "missing"
    lease = {"email_id": email_id, "attempts": claimed.attempts}
    try:
        async with lease_renewed(store, lease_secs=settings.email_lease_secs, **lease):
            await backend.send(build_message(claimed, sender=settings.email_from))
    except Exception as exc:
        return await _failed(store, settings, claimed, exc)
    # Accepted (250): record it now, through a database cut, or it would be sent again.
    await record_outcome(store, status="sent", **lease)
    log.info("email sent", id=email_id, attempt=claimed.attempts)
    return "sent"


async def _failed(
    store: Store, settings: TaskSettings, claimed: ClaimedEmail, exc: Exception
) -> str:
    """Fail for good on 5xx or a spent horizon; otherwise park until the next try and raise."""
    now = store.clock()
    delay = retry_delay_secs(claimed.attempts, settings)
    horizon_end = claimed.created_at + timedelta(seconds=settings.email_retry_horizon_secs)
    error = f"{type(exc).__name__}: {exc}"
    if is_permanent(exc) or now + timedelta(seconds=delay) > horizon_end:
        await finish_email(
            store, email_id=claimed.id, attempts=claimed.attempts, status="failed", error=error
        )
        log.warning("email failed for good", id=claimed.id, attempt=claimed.attempts, error=error)
        return "failed"
    next_at = now + timedelta(seconds=delay)
    await finish_email(
        store, email_id=claimed.id, attempts=claimed.attempts, status="queued", error=error,
        next_attempt_at=next_at,
    )  # fmt: skip
    log.info(
        "email send failed; will retry", id=claimed.id, attempt=claimed.attempts,
        next_try_in_secs=round(delay, 1), error=error,
    )  # fmt: skip
    raise SendFailed(error, retry_after_secs=delay) from exc
