"""What the password-check throttle needs from a request: the limits and the client address."""

from __future__ import annotations

from starlette.requests import Request

from domain.throttle import LoginLimits


def login_limits(request: Request) -> LoginLimits:
    settings = request.app.state.settings
    return LoginLimits(
        failures_per_user=settings.login_failures_per_user,
        failures_per_client=settings.login_failures_per_client,
        window_secs=settings.login_window_secs,
    )


def client_ip(request: Request) -> str:
    """The peer address (set from forwarding headers only by trusted proxies)."""
    return request.client.host if request.client else "unknown"
