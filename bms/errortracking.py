"""Optional error reports to Sentry (or any Sentry-compatible service) when SENTRY_DSN is set.

Reports come from log lines at ERROR and above (sentry-sdk's logging integration), so
whatever BMS logs as an error — an unhandled request error, a failing task or job — is
reported with the same context as its log line: request id, user id, process role. Nothing
else about the user and no secrets leave: no request bodies, cookies, headers or local
variables, user = {"id"} only, and every string passes the log redaction (bms.logs).
"""

from __future__ import annotations

import logging
import re
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

import structlog

from bms.logs import redact

if TYPE_CHECKING:
    from bms.settings import Settings

# Log context copied into a report as tags (the user id becomes `user`).
TAGGED_KEYS = ("request_id", "role", "task", "task_id", "path", "method")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")


def init_error_tracking(settings: Settings, *, role: str) -> bool:
    """Start reporting if SENTRY_DSN is set; return whether it did."""
    if not settings.sentry_dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.logging import LoggingIntegration

    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.sentry_environment or settings.bms_env,
        release=f"bms@{_version()}",
        send_default_pii=False,
        include_local_variables=False,  # locals hold passwords, tokens, rows
        max_request_body_size="never",
        traces_sample_rate=settings.sentry_traces_sample_rate,
        # Only what is listed: no automatic framework integrations that attach requests.
        auto_enabling_integrations=False,
        integrations=[LoggingIntegration(level=None, event_level=logging.ERROR)],
        before_send=scrub_event,  # type: ignore[arg-type]  # Event is a TypedDict of a dict
    )
    sentry_sdk.set_tag("role", role)
    return True


def _version() -> str:
    try:
        return version("bms")
    except PackageNotFoundError:
        return "unknown"


def scrub_event(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """Tag the report with the log context; drop personal fields; redact every string."""
    context = dict(structlog.contextvars.get_contextvars())
    record = hint.get("log_record")
    if record is not None and isinstance(record.msg, dict):  # a structlog line
        context.update(record.msg)
        event["logentry"] = {"message": str(record.msg.get("event", "")), "params": []}
    event.pop("request", None)
    event.pop("extra", None)
    event.pop("breadcrumbs", None)
    tags = event.setdefault("tags", {})
    for key in TAGGED_KEYS:
        if context.get(key) is not None:
            tags[key] = str(context[key])
    user_id = context.get("user_id")
    event["user"] = {"id": str(user_id)} if user_id is not None else {}
    return _scrubbed(event)


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return _EMAIL.sub("[email]", redact(value))
    if isinstance(value, dict):
        return {key: _scrubbed(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrubbed(item) for item in value]
    return value
