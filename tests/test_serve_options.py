"""`bms serve` runs uvicorn on uvloop and httptools when they are installed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bms import cli


def test_fastest_prefers_installed_modules() -> None:
    assert cli._fastest("uvloop", "asyncio") == "uvloop"
    assert cli._fastest("httptools", "h11") == "httptools"
    assert cli._fastest("bms_no_such_module", "h11") == "h11"


def test_serve_passes_the_fast_loop_and_parser(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import uvicorn

    monkeypatch.setenv("BMS_DATA_DIR", str(tmp_path))
    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: seen.update(kwargs))
    monkeypatch.setattr(cli, "_ensure_schema", lambda settings: True)
    args = cli.build_parser().parse_args(["serve", "--workers", "1"])
    assert cli.cmd_serve(args) == 0
    assert seen["loop"] == "uvloop" and seen["http"] == "httptools"
