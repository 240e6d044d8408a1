"""ALLOWED_HOSTS: refuse a Host header BMS is not served under (it is reflected in links)."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

# Probes and scrapes address a node directly (127.0.0.1, web:8000): any Host is fine there,
# and these answers reflect nothing.
OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class AllowedHostsMiddleware:
    """Starlette's host check (400 otherwise) on every path but the operations endpoints."""

    def __init__(self, app: ASGIApp, *, allowed_hosts: Sequence[str]) -> None:
        self.app = app
        self.checked = TrustedHostMiddleware(app, allowed_hosts=allowed_hosts, www_redirect=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in OPS_PATHS:
            await self.app(scope, receive, send)
            return
        await self.checked(scope, receive, send)
