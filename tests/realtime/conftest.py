"""Realtime fixtures on top of the shared ones: settings with a private channel namespace."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from bms.settings import Settings
from tests.conftest import make_settings


@pytest.fixture
def rt_settings(database_url: str, tmp_path: Path) -> Settings:
    """PostgreSQL + Redis, or SQLite + memory://, with a namespace of this test's own."""
    return make_settings(database_url, tmp_path)


@pytest.fixture
def unused_port() -> int:
    """A TCP port nothing listens on (for "Redis is down")."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
