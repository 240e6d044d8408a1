"""`bms backup`, `bms backup verify` and `bms restore` as an operator meets them: one line
per outcome, exit status 0 or 1, never a traceback."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from bms.cli import main


@pytest.fixture
def embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An embedded (SQLite) installation with a migrated database and one media file."""
    data = tmp_path / "data"
    monkeypatch.setenv("BMS_DATA_DIR", str(data))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("SECRET_KEY", "cli-test-secret-" + "x" * 32)
    assert main(["migrate"]) == 0
    (data / "media" / "profile-images").mkdir(parents=True)
    (data / "media" / "profile-images" / "1-0123456789abcdef.png").write_bytes(b"png")
    return data


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def test_backup_verify_and_restore(embedded: Path, tmp_path: Path, capsys) -> None:
    assert main(["backup", "--to", str(tmp_path / "out")]) == 0
    assert "1 media files" in _one_line(capsys.readouterr().out)
    archive = next((tmp_path / "out").glob("bms-backup-*.tar"))
    assert archive.stat().st_mode & 0o777 == 0o600  # password hashes inside: owner only
    assert main(["backup", "verify", str(archive)]) == 0
    assert "is intact" in _one_line(capsys.readouterr().out)

    # A migrated database without rows counts as empty: restore goes ahead.
    assert main(["restore", str(archive)]) == 0
    assert "restored" in _one_line(capsys.readouterr().out)
    # The restore marker is a row now: a second restore needs --force and says what it replaces.
    assert main(["restore", str(archive)]) == 1
    err = _one_line(capsys.readouterr().err)
    assert err.startswith("bms: restore refused: the target database is not empty (1 events")
    assert main(["restore", "--force", str(archive)]) == 0
    assert capsys.readouterr().out.startswith("bms: --force: replacing 1 events")


def test_damaged_archives_get_one_line_and_status_1(embedded: Path, tmp_path: Path, capsys) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar at all" * 100)
    assert main(["backup", "verify", str(junk)]) == 1
    assert "not a readable tar archive" in _one_line(capsys.readouterr().err)
    assert main(["restore", str(tmp_path / "missing.tar")]) == 1
    assert "no such file" in _one_line(capsys.readouterr().err)
    assert not list((embedded / "media").parent.glob(".bms-restore-*"))  # scratch removed


def test_migrate_check_exits_1_while_migrations_are_pending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from db import migrate

    monkeypatch.setenv("BMS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    migrate.upgrade(f"sqlite+aiosqlite:///{tmp_path / 'bms.sqlite3'}", "0002")
    assert main(["migrate", "--check"]) == 1
    assert "migrations pending: 0003" in _one_line(capsys.readouterr().err)
    assert main(["migrate"]) == 0
    capsys.readouterr()
    assert main(["migrate", "--check"]) == 0
    assert "no migrations pending" in _one_line(capsys.readouterr().out)


def test_export_and_import_from_the_command_line(embedded: Path, tmp_path: Path, capsys) -> None:
    assert main(["createuser", "--username", "ada", "--role", "admin", "--generate-password"]) == 0
    out = tmp_path / "all.jsonl"
    assert main(["export", "--to", str(out)]) == 0
    assert out.stat().st_mode & 0o777 == 0o600
    assert b'"user-credentials"' in out.read_bytes()
    assert main(["export", "--without-credentials", "--to", str(out)]) == 0
    assert b'"user-credentials"' not in out.read_bytes()
    capsys.readouterr()
    assert main(["import", "--dry-run", str(out)]) == 0  # ada exists: reused, not duplicated
    assert "reused existing 1 profiles" in _one_line(capsys.readouterr().out)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "locations", "data": {"name": "X", "code": "X"}}\n')
    assert main(["import", str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"bms: {bad}: line 1: timezone: This field is required.",
        "bms: 1 errors; nothing was written",
    ]
    assert main(["import", str(tmp_path / "missing.jsonl")]) == 1
    assert "no such file" in _one_line(capsys.readouterr().err)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bars_only_on_a_terminal(
    embedded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    assert main(["backup", "--to", str(tmp_path / "out")]) == 0
    archive = next((tmp_path / "out").glob("bms-backup-*.tar"))
    capsys.readouterr()
    assert main(["backup", "verify", str(archive)]) == 0
    assert "B/s" not in capsys.readouterr().err  # piped: no bar in logs
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["backup", "verify", str(archive)]) == 0
    assert main(["restore", "--force", str(archive)]) == 0
    assert main(["export", "--to", str(tmp_path / "x.jsonl")]) == 0
    assert main(["import", "--dry-run", str(tmp_path / "x.jsonl")]) == 0
    shown = terminal.getvalue()
    assert "B/s" in shown and "rows" in shown  # tqdm drew its bars
