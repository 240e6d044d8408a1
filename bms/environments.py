"""BMS_ENV: what each environment requires, and the start-time check that enforces it.

- development: anything goes (embedded SQLite, console logs, plain HTTP, any Host).
- staging: production's configuration on production-like infrastructure; an unsafe
  setting is logged as a warning so a rehearsal can still start.
- production: refuses to start with an unsafe setting, one line per problem.
- test: the test suite's own (behaves like development).
SECRET_KEY and DATABASE_URL are required in production by the settings themselves.
"""

from __future__ import annotations

from bms.settings import Settings

LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def unsafe_settings(settings: Settings) -> list[str]:
    """Every setting that is unsafe for a production deployment, each as one line."""
    problems = []
    if settings.log_level.upper() == "DEBUG":
        problems.append(
            "LOG_LEVEL=DEBUG: debug lines can carry secrets and personal data; use INFO"
        )
    if not settings.allowed_hosts:
        problems.append(
            "ALLOWED_HOSTS is empty: list the host names BMS is served under "
            "(e.g. bms.example.com); any Host header is accepted otherwise"
        )
    if not settings.cookie_secure:
        problems.append(
            "COOKIE_SECURE=false: session cookies would also travel over plain HTTP; "
            "production is served over HTTPS, set it to true"
        )
    if not settings.redis_url:
        problems.append(
            "REDIS_URL is empty: workers, the scheduler and several web processes need Redis"
        )
    for origin in settings.allowed_origins:
        host = origin.split("://", 1)[-1].split(":", 1)[0]
        if origin.startswith("http://") and host not in LOCAL_HOSTS:
            problems.append(f"ALLOWED_ORIGINS has plain-HTTP origin {origin}: use https://")
    return problems


def check_environment(settings: Settings) -> tuple[list[str], list[str]]:
    """(errors that stop the start, warnings to log) for the configured BMS_ENV."""
    if settings.bms_env == "production":
        return unsafe_settings(settings), []
    if settings.bms_env == "staging":
        return [], unsafe_settings(settings)
    return [], []
