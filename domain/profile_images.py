"""Profile images: re-encoded as avatars (domain/avatars.py), stored under the media directory."""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import structlog

from db.tables import profiles
from db.uow import UnitOfWork
from domain.actors import Actor
from domain.avatars import prepare_avatar
from domain.errors import NotFound, PermissionDenied
from domain.offload import run_cpu
from domain.users import TOPIC, get_profile

log = structlog.get_logger("bms.profile_images")

IMAGE_DIR = "profile-images"
MEDIA_TYPES = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}
NO_FILE = "No file was submitted."

_STORED_NAME = re.compile(r"\d+-[0-9a-f]{16,64}\.(png|jpg|webp)\Z")


def image_dir(media_root: Path) -> Path:
    return media_root / IMAGE_DIR


def stored_image_path(media_root: Path, name: str) -> Path | None:
    """The file for a served name, or None when the name is not one we could have made."""
    if not _STORED_NAME.match(name):
        return None
    folder = image_dir(media_root).resolve()
    path = (folder / name).resolve()
    if path.parent != folder or not path.is_file():
        return None
    return path


def media_type_of(path: Path) -> str:
    return MEDIA_TYPES[path.suffix.removeprefix(".")]


def check_can_set_image(actor: Actor, profile: dict[str, Any]) -> None:
    """Only the profile's owner or an admin may change its image."""
    if not (actor.is_admin or profile["user"] == actor.id):
        raise PermissionDenied()


def _write_file(folder: Path, name: str, data: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def _remove_file(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


async def remove_image(media_root: Path, image: str | None) -> None:
    """Delete the file behind a profile's image (its URL or its column value), if it is ours.

    Runs after the change committed: a file that cannot be removed is logged, never an error
    for a request that succeeded.
    """
    name = (image or "").rpartition("/")[2]
    path = stored_image_path(media_root, name)
    if path is None:
        return
    try:
        await asyncio.to_thread(_remove_file, path)
    except OSError as exc:
        log.warning("profile image not removed", path=str(path), error=repr(exc))


async def prepare_image(data: bytes) -> tuple[str, bytes]:
    """(extension, avatar bytes) of an upload, computed off the loop before any transaction."""
    return await run_cpu(prepare_avatar, data)


async def set_profile_image(
    uow: UnitOfWork,
    actor: Actor,
    profile_id: int,
    *,
    image: tuple[str, bytes],
    media_root: Path,
) -> dict[str, Any]:
    """Store a prepared image (`prepare_image`) for a profile; return the updated profile."""
    current = await get_profile(uow.conn, None, profile_id=profile_id)
    if current is None:
        raise NotFound()
    check_can_set_image(actor, current)
    extension, data = image
    folder = image_dir(media_root)
    name = f"{profile_id}-{secrets.token_hex(16)}.{extension}"
    old = await uow.conn.fetch_val(
        sa.select(profiles.c.profile_image).where(profiles.c.id == profile_id)
    )
    await asyncio.to_thread(_write_file, folder, name, data)
    try:
        await uow.conn.execute(
            profiles.update()
            .where(profiles.c.id == profile_id)
            .values(profile_image=f"{IMAGE_DIR}/{name}", updated_at=uow.now)
        )
        updated = await get_profile(uow.conn, None, profile_id=profile_id)
        assert updated is not None
    except BaseException:
        await asyncio.to_thread(_remove_file, folder / name)
        raise
    await uow.record_history(
        TOPIC, profile_id, {"profile_image": [current["profile_image"], updated["profile_image"]]}
    )
    uow.emit(TOPIC, "updated", object_id=profile_id, data=updated)
    if old:

        async def remove_old() -> None:
            await remove_image(media_root, old)

        uow.after_commit(remove_old)
    return updated
