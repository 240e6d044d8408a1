"""The redis-py options every BMS Redis client shares, so a Redis restart costs no command.

A pooled connection that was open when Redis restarted is stale: the next command on it
fails with "Connection closed by server". redis-py's clients built from a connection pool
(Taskiq's broker and result backend build theirs that way) retry nothing unless told to,
so each stale connection lost one command (an enqueue, an ack, a result). With these
options redis-py reconnects and runs the command again on a fresh connection, and a health
check PINGs a connection that sat idle before reusing it.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# Retries of one command: the first gets a fresh connection after a restart; the others
# ride out a Redis that is just coming back (0.05 + 0.1 + 0.2 s, capped at 1 s).
REDIS_RETRIES = 3
REDIS_RETRY_BASE_SECS = 0.05
REDIS_RETRY_CAP_SECS = 1.0
# A connection idle this long is PINGed before use (and reconnected if that fails).
REDIS_HEALTH_CHECK_SECS = 15


def redis_options(
    *, retries: int = REDIS_RETRIES, health_check_secs: int = REDIS_HEALTH_CHECK_SECS
) -> dict[str, Any]:
    """Keyword arguments for `Redis(...)`, `Redis.from_url` or `ConnectionPool.from_url`."""
    return {
        "retry": Retry(
            ExponentialBackoff(cap=REDIS_RETRY_CAP_SECS, base=REDIS_RETRY_BASE_SECS), retries
        ),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
        "health_check_interval": health_check_secs,
        "socket_keepalive": True,
    }
