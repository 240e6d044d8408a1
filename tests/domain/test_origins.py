"""The one origin rule shared by CSRF checks and cookie-authenticated sockets."""

from __future__ import annotations

import pytest

from domain.origins import is_trusted_origin

ALLOWED = ["https://dashboard.example"]


@pytest.mark.parametrize(
    ("origin", "trusted"),
    [
        ("https://dashboard.example", True),
        ("https://DASHBOARD.example/", True),
        ("http://bms.local:8000", True),  # the server itself
        ("https://bms.local:8000", True),
        ("http://bms.local:8001", False),  # another port is another origin
        ("https://evil.example", False),
        ("null", False),
        ("file://bms.local:8000", False),
    ],
)
def test_trusted_origins(origin: str, trusted: bool) -> None:
    assert is_trusted_origin(origin, host="bms.local:8000", allowed=ALLOWED) is trusted


def test_no_host_trusts_only_the_list() -> None:
    assert not is_trusted_origin("http://x", host="", allowed=ALLOWED)
