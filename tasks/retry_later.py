"""Expected, retriable task failures: one log line each, never a traceback."""

from __future__ import annotations

import logging

# Taskiq's receiver logs every exception a task raises with its traceback.
TASKIQ_RECEIVER_LOGGER = "taskiq.receiver.receiver"


class RetryLater(RuntimeError):
    """The task cannot finish now (SMTP 4xx, a held lease); the retry middleware runs it again
    after `retry_after_secs`. Whoever raises it has logged one line saying why."""

    def __init__(self, message: str, retry_after_secs: float) -> None:
        super().__init__(message)
        self.retry_after_secs = retry_after_secs


class HideExpectedRetries(logging.Filter):
    """Drop the receiver's traceback for a `RetryLater`: an SMTP outage logged ~400 of them."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, RetryLater)


def hide_expected_retries() -> None:
    """Install the filter once (idempotent: a test may start several workers)."""
    logger = logging.getLogger(TASKIQ_RECEIVER_LOGGER)
    if not any(isinstance(f, HideExpectedRetries) for f in logger.filters):
        logger.addFilter(HideExpectedRetries())
