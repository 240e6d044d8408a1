"""Realtime metrics (multiprocess-safe, like api/middleware.py's): sockets closed for slowness."""

from __future__ import annotations

from prometheus_client import Counter

WS_CLOSED = Counter(
    "bms_ws_closed_total",
    "WebSockets closed by the server, by close code (4008: too far behind, a slow client)",
    ["code"],
)
CLOSED_TOO_SLOW = WS_CLOSED.labels("4008")  # exported at 0 from the start: increase() works
