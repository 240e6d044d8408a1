"""The archive file: a plain tar whose first member is the manifest, every member checksummed.

Members are written to `<name>.partial` and renamed at the end, so a directory of archives
never holds a half-written one under a final name (the scheduled job and the metric rely on it).
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath
from typing import IO

from db.backup.manifest import MANIFEST_NAME, ArchiveError, Manifest

CHUNK_BYTES = 1024 * 1024
SUFFIX = ".tar"
PREFIX = "bms-backup-"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def write_archive(target: Path, manifest: Manifest, files: Iterable[tuple[str, Path]]) -> Path:
    """Write `files` (member name, source path) under `manifest` into `target`, atomically."""
    files = list(files)
    manifest.members = {name: sha256_of(source) for name, source in files}
    partial = target.with_name(target.name + ".partial")
    try:
        # Owner-only: the dump holds password hashes and every private row.
        partial.touch(mode=0o600)
        partial.chmod(0o600)
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
            raw = manifest.to_json()
            info = tarfile.TarInfo(MANIFEST_NAME)
            info.size = len(raw)
            info.mode = 0o600
            tar.addfile(info, io.BytesIO(raw))
            for name, source in files:
                info = tar.gettarinfo(str(source), arcname=name)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                with source.open("rb") as fh:
                    tar.addfile(info, fh)
        with partial.open("rb") as fh:
            os.fsync(fh.fileno())
        partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return target


def _safe_name(name: str) -> bool:
    path = PurePosixPath(name)
    return bool(name) and not path.is_absolute() and ".." not in path.parts


def read_manifest(archive: Path) -> Manifest:
    """The manifest alone (cheap: it is the first member); raise ArchiveError if unreadable."""
    try:
        with tarfile.open(archive, "r:") as tar:
            first = tar.next()
            if first is None or first.name != MANIFEST_NAME or not first.isfile():
                raise ArchiveError("not a BMS backup (no manifest.json at its start)")
            fh = tar.extractfile(first)
            assert fh is not None
            return Manifest.from_json(fh.read())
    except FileNotFoundError:
        raise ArchiveError(f"{archive}: no such file") from None
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ArchiveError(f"{archive}: not a readable tar archive ({exc})") from None


Progress = Callable[[int], None]


def _copy_hashing(source: IO[bytes], sink: IO[bytes] | None, progress: Progress | None) -> str:
    digest = hashlib.sha256()
    while chunk := source.read(CHUNK_BYTES):
        if progress is not None:
            progress(len(chunk))
        digest.update(chunk)
        if sink is not None:
            sink.write(chunk)
    return digest.hexdigest()


def unpack(archive: Path, dest: Path | None, *, progress: Progress | None = None) -> Manifest:
    """Check every member's checksum, extracting into `dest` when given; return the manifest.

    Raises ArchiveError naming the first problem: a changed, missing or unexpected member,
    an unsafe name, or a truncated file.
    """
    manifest = read_manifest(archive)
    seen: set[str] = set()
    try:
        with tarfile.open(archive, "r:") as tar:
            for member in tar:
                if member.name == MANIFEST_NAME:
                    continue
                if not member.isfile() or not _safe_name(member.name):
                    raise ArchiveError(f"unexpected member {member.name!r} in the archive")
                expected = manifest.members.get(member.name)
                if expected is None:
                    raise ArchiveError(f"member {member.name!r} is not in the manifest")
                source = tar.extractfile(member)
                assert source is not None
                if dest is None:
                    actual = _copy_hashing(source, None, progress)
                else:
                    out = dest / member.name
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with out.open("wb") as sink:
                        actual = _copy_hashing(source, sink, progress)
                if actual != expected:
                    raise ArchiveError(
                        f"checksum mismatch for {member.name!r}: the archive is corrupt"
                    )
                seen.add(member.name)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ArchiveError(f"{archive}: damaged or truncated ({exc})") from None
    missing = sorted(set(manifest.members) - seen)
    if missing:
        raise ArchiveError(f"the archive lacks {missing[0]!r} (truncated?)")
    return manifest
