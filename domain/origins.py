"""Which browser origins BMS trusts with cookie-authenticated requests and sockets."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit


def is_trusted_origin(origin: str, *, host: str, allowed: Iterable[str]) -> bool:
    """True for a listed origin, or one naming this server itself (same host and port)."""
    origin = origin.rstrip("/").lower()
    if origin in {o.rstrip("/").lower() for o in allowed}:
        return True
    parts = urlsplit(origin)
    return bool(host) and parts.scheme in ("http", "https") and parts.netloc == host.lower()
