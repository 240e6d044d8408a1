"""Back up, lose, restore: every REST representation and image comes back, on both backends;
bad archives and occupied targets are refused with nothing changed."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import pytest

from db import migrate
from db.backup.archive import read_manifest, unpack, write_archive
from db.backup.create import create_backup
from db.backup.manifest import ArchiveError
from db.backup.restore import TargetNotEmpty, inspect_target, restore_backup
from tests.backup.world import (
    add_user,
    drop_database,
    new_database,
    running_app,
    seed,
    snapshot,
)

pytestmark = pytest.mark.timeout(120)


async def _backup(url: str, data_dir: Path, out: Path) -> Path:
    result = await create_backup(
        url, media_root=data_dir / "media", out_dir=out, bms_version="test"
    )
    return result.path


async def test_restore_brings_back_every_representation(backend: str, tmp_path: Path) -> None:
    url = await new_database(backend, tmp_path)
    data = tmp_path / "data"
    async with running_app(url, data) as app:
        token = await seed(app)
        before = await snapshot(app, token)
    archive = await _backup(url, data, tmp_path / "backups")
    await drop_database(url)
    shutil.rmtree(data / "media")

    target = await new_database(backend, tmp_path, revision=None)
    try:
        result = await restore_backup(archive, target, media_root=data / "media")
        assert result.media_files == 1 and result.replaced == {}
        async with running_app(target, data) as app:
            after = await snapshot(app, token)
    finally:
        await drop_database(target)
    assert after == before
    assert any(isinstance(v, bytes) for v in after.values())  # the image came back too
    assert before["incident-tickets"] and before["notifications"]


async def _seeded(backend: str, tmp_path: Path) -> tuple[str, Path, Path]:
    """A database with two users, and its backup (cheaper than the whole world)."""
    url = await new_database(backend, tmp_path)
    data = tmp_path / "data"
    async with running_app(url, data) as app:
        await add_user(app, "admin", "ada")
        await add_user(app, "operator", "otto")
    return url, data, await _backup(url, data, tmp_path / "backups")


async def test_occupied_target_is_refused_unless_forced(backend: str, tmp_path: Path) -> None:
    url, data, archive = await _seeded(backend, tmp_path)
    try:
        with pytest.raises(TargetNotEmpty, match="2 users") as refused:
            await restore_backup(archive, url, media_root=data / "media")
        assert refused.value.row_counts["users"] == 2
        before, newest = await inspect_target(url)
        if backend == "postgres":
            from db.backup.postgres import other_sessions

            assert await other_sessions(url) == 0
            async with running_app(url, data):  # a live server: the CLI warns about it
                assert await other_sessions(url) >= 1
        result = await restore_backup(archive, url, media_root=data / "media", force=True)
        assert result.replaced["users"] == 2
        after, _ = await inspect_target(url)
        assert after["users"] == before["users"]
        assert result.marker_id > newest
        manifest = read_manifest(archive)
        assert manifest.row_counts == before  # the dump and its counts are one snapshot
        assert manifest.bms_version == "test" and manifest.revision == migrate.head_revision()
    finally:
        await drop_database(url)


def _corrupt(archive: Path, member: str) -> None:
    """Flip one byte inside `member`'s data, keeping the tar structure intact."""
    with tarfile.open(archive) as tar:
        offset = tar.getmember(member).offset_data
    with archive.open("r+b") as fh:
        fh.seek(offset + 10)
        byte = fh.read(1)
        fh.seek(offset + 10)
        fh.write(bytes([byte[0] ^ 0xFF]))


async def test_corrupt_archive_is_refused_and_changes_nothing(backend: str, tmp_path: Path) -> None:
    url, data, archive = await _seeded(backend, tmp_path)
    try:
        manifest = read_manifest(archive)
        _corrupt(archive, manifest.database)
        before = await inspect_target(url)
        images = sorted((data / "media").rglob("*"))
        with pytest.raises(ArchiveError, match="checksum mismatch for 'database"):
            await restore_backup(archive, url, media_root=data / "media", force=True)
        with pytest.raises(ArchiveError, match="checksum mismatch"):
            unpack(archive, None)
        assert await inspect_target(url) == before
        assert sorted((data / "media").rglob("*")) == images
        raw = archive.read_bytes()
        archive.write_bytes(raw[: len(raw) // 2])
        with pytest.raises(ArchiveError, match=r"truncated|damaged|lacks"):
            unpack(archive, None)
    finally:
        await drop_database(url)


async def test_failure_after_loading_rolls_back(backend: str, tmp_path: Path) -> None:
    """Counts that disagree with the manifest are found after the load: nothing commits."""
    url, data, archive = await _seeded(backend, tmp_path)
    try:
        unpacked = tmp_path / "unpacked"
        manifest = unpack(archive, unpacked)
        manifest.row_counts["users"] += 1
        files = [(name, unpacked / name) for name in manifest.members]
        lying = write_archive(tmp_path / "lying.tar", manifest, files)
        # Make the target differ from the archive, so a partial restore would show.
        async with running_app(url, data) as app:
            await add_user(app, "viewer", "vera")
        before = await inspect_target(url)
        with pytest.raises(ArchiveError, match="row counts differ"):
            await restore_backup(lying, url, media_root=data / "media", force=True)
        assert await inspect_target(url) == before
    finally:
        await drop_database(url)


async def test_older_archive_restores_and_migrates(backend: str, tmp_path: Path) -> None:
    old = await new_database(backend, tmp_path, revision="0002")
    data = tmp_path / "data"
    archive = await _backup(old, data, tmp_path / "backups")
    assert read_manifest(archive).revision == "0002"
    await drop_database(old)
    target = await new_database(backend, tmp_path, revision=None)
    try:
        result = await restore_backup(archive, target, media_root=data / "media")
        assert result.migrated_from == "0002"
        assert await migrate.current_revision(target) == migrate.head_revision()
    finally:
        await drop_database(target)
    other = await new_database("sqlite" if backend == "postgres" else "postgres", tmp_path)
    try:
        with pytest.raises(ArchiveError, match="bms export"):
            await restore_backup(archive, other, media_root=data / "media")
    finally:
        await drop_database(other)
