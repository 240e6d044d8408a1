"""One log stream for every process: structlog renders its own lines and the stdlib's alike.

`bms serve`, `bms worker` and `bms scheduler` call `configure_logging` once at start (each
`bms serve` worker process too). Every line carries a UTC timestamp, the level, the process
role and pid, and whatever the code bound to the context (request id, user id). Secrets in
URLs (access tokens, API keys, calendar feed tokens) are redacted before anything is written.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import TYPE_CHECKING, Any, Literal, TextIO

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

if TYPE_CHECKING:
    from bms.settings import Settings

LogFormat = Literal["console", "json"]

# `?token=…`, `&key=…` and friends in query strings, and the secret in a feed URL.
_QUERY_SECRET = re.compile(
    r"(?i)([?&;](?:access_token|refresh_token|token|key|api_key|password|secret|code)=)[^&\s\"']+"
)
_FEED_TOKEN = re.compile(r"(/calendar/)[^/\s\"'?]+(\.ics)")
REDACTED = "***"

# Chatty libraries whose INFO lines say nothing an operator needs.
_QUIET_LOGGERS = ("taskiq", "httpx", "httpcore", "asyncio", "aiosmtplib", "alembic.runtime.plugins")


def redact(text: str) -> str:
    """Replace secrets in a path, URL or message with ***."""
    if "=" in text:
        text = _QUERY_SECRET.sub(rf"\1{REDACTED}", text)
    if "/calendar/" in text:
        text = _FEED_TOKEN.sub(rf"\1{REDACTED}\2", text)
    return text


def _redact_values(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = redact(value)
    return event


def _drop_color_message(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    event.pop("color_message", None)  # uvicorn's ANSI copy of the message
    return event


def _add_process(role: str) -> Processor:
    pid = os.getpid()

    def add(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
        event.setdefault("role", role)
        event.setdefault("pid", pid)
        return event

    return add


def _wrap_for_formatter(
    logger: WrappedLogger, name: str, event: EventDict
) -> tuple[Any, dict[str, Any]]:
    """structlog's wrap_for_formatter, also handing the exception to the stdlib record.

    Error tracking (bms/errortracking.py, through sentry-sdk's logging integration) reads
    `record.exc_info`; structlog alone would keep it inside the event dict.
    """
    args, extra = structlog.stdlib.ProcessorFormatter.wrap_for_formatter(logger, name, event)
    kwargs: dict[str, Any] = dict(extra)
    exc_info = event.get("exc_info")
    if exc_info is True:
        exc_info = sys.exc_info()
    elif isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if isinstance(exc_info, tuple) and exc_info[0] is not None:
        kwargs["exc_info"] = exc_info
    return args, kwargs


class _OneLineFormatter(structlog.stdlib.ProcessorFormatter):
    """The renderer already wrote the traceback (inside the JSON object, or below the line
    on the console): the stdlib must not append it again after the rendered line.

    `keep_exc_info=True` keeps the exception on the record for error tracking, which reads
    it after this handler ran; without these overrides the stdlib would append it raw.
    """

    def formatException(self, ei: Any) -> str:
        return ""

    def formatStack(self, stack_info: str) -> str:
        return ""


def _orjson_text(value: Any, **_: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def _renderer(fmt: LogFormat, stream: TextIO) -> Processor:
    if fmt == "json":
        # orjson: an access line costs ~50 us instead of ~120 us with the json module.
        return structlog.processors.JSONRenderer(serializer=_orjson_text)
    return structlog.dev.ConsoleRenderer(colors=stream.isatty())


def configure_logging(
    *, role: str, level: str = "INFO", fmt: LogFormat = "console", stream: TextIO | None = None
) -> None:
    """Route structlog and stdlib logging (uvicorn, taskiq, realtime) through one renderer."""
    stream = stream or sys.stderr
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_process(role),
        structlog.processors.StackInfoRenderer(),
        _redact_values,
    ]
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *shared, _wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        _OneLineFormatter(
            foreign_pre_chain=[structlog.stdlib.ExtraAdder(), _drop_color_message, *shared],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *([structlog.processors.format_exc_info] if fmt == "json" else []),
                _renderer(fmt, stream),
            ],
            keep_exc_info=True,  # error tracking reads the record after this handler
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.asgi"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
        logger.setLevel(level.upper())
    logging.captureWarnings(True)  # warnings.warn (e.g. SQLAlchemy's) joins the same stream
    # api.middleware writes the access lines (with request and user ids); uvicorn's are off.
    logging.getLogger("uvicorn.access").disabled = True
    quiet = max(logging.WARNING, logging.getLevelName(level.upper()))
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(quiet)


def configure_from(settings: Settings, *, role: str) -> None:
    """`configure_logging` with LOG_LEVEL and LOG_FORMAT (its default follows BMS_ENV)."""
    configure_logging(role=role, level=settings.log_level, fmt=settings.effective_log_format)
