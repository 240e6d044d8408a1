"""/api/profiles/, the profile image upload, and /media/profile-images/ (mounted at top level)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from api.auth.limits import client_ip, login_limits
from api.context import get_store, path_id, require_actor
from api.crud import Resource, resource_routes
from api.listing import Filter, ListSpec
from api.openapi.meta import ResourceDoc
from api.responses import detail_response, error_response
from db.tables import profiles as p
from db.tables import users as u
from domain import avatars, profile_images, profiles
from domain.actors import Actor
from domain.errors import NotFound, ValidationFailed
from domain.users import get_profile

MEDIA_DIR = "media"
# Names are random and never reused, so a served image never changes.
IMAGE_CACHE_CONTROL = "public, max-age=31536000, immutable"


def media_root(request: Request) -> Path:
    return Path(request.app.state.settings.data_dir) / MEDIA_DIR


async def _remove_image(request: Request, deleted: dict) -> None:
    """A deleted user's picture goes too (it was served to anyone with its URL)."""
    await profile_images.remove_image(media_root(request), deleted["profile_image"])


async def _prepare_update(
    request: Request, actor: Actor, profile_id: int, data: Mapping[str, Any]
) -> dict[str, Any]:
    """Check a `current_password` (throttled, off the loop) before the update's transaction."""
    verified = await profiles.verify_current_password(
        get_store(request),
        actor,
        profile_id=profile_id,
        data=data,
        client_ip=client_ip(request),
        limits=login_limits(request),
    )
    return {"current_password_verified": verified}


async def _read_image(request: Request) -> bytes:
    """The bytes of the multipart field `image` (415 for other bodies, 400 when missing)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "multipart/form-data":
        raise HTTPException(415, f'Unsupported media type "{media_type}" in request.')
    async with request.form(max_files=1, max_fields=10) as form:
        upload = form.get("image")
        if not isinstance(upload, UploadFile):
            raise ValidationFailed.on("image", profile_images.NO_FILE)
        data = await upload.read(avatars.MAX_IMAGE_BYTES + 1)
    if len(data) > avatars.MAX_IMAGE_BYTES:
        raise ValidationFailed.on("image", avatars.TOO_LARGE)
    return data


async def upload_image(request: Request) -> Response:
    """POST /api/profiles/<id>/image/: owner or admin; 200 with the profile."""
    actor = require_actor(request)
    store = get_store(request)
    profile_id = path_id(request)
    async with store.connection() as conn:
        found = await get_profile(conn, actor, profile_id)
    if found is None:
        raise NotFound()
    profile_images.check_can_set_image(actor, found)
    image = await profile_images.prepare_image(await _read_image(request))
    async with store.unit_of_work(actor_id=actor.id) as uow:
        updated = await profile_images.set_profile_image(
            uow, actor, profile_id, image=image, media_root=media_root(request)
        )
    return detail_response(updated)


async def serve_image(request: Request) -> Response:
    """GET /media/profile-images/<file>: only names the upload could have produced."""
    path = profile_images.stored_image_path(media_root(request), request.path_params["name"])
    if path is None:
        return error_response("Not found.", 404)
    return FileResponse(
        path,
        media_type=profile_images.media_type_of(path),
        headers={"Cache-Control": IMAGE_CACHE_CONTROL, "X-Content-Type-Options": "nosniff"},
    )


RESOURCE = Resource(
    path="/profiles",
    spec=ListSpec(
        filters=(
            Filter("role", u.c.role, kind="choice", choices=profiles.ROLES),
            Filter("department", p.c.department, kind="str"),
            Filter("location", p.c.location_id),
            Filter("is_active", u.c.is_active, kind="bool"),
        ),
        search=(u.c.username, u.c.first_name, u.c.last_name, u.c.email, p.c.title),
        ordering={
            "username": u.c.username,
            "email": u.c.email,
            "first_name": u.c.first_name,
            "last_name": u.c.last_name,
            "role": u.c.role,
            "is_active": u.c.is_active,
            "title": p.c.title,
            "department": p.c.department,
            "location": p.c.location_id,
            "created_at": p.c.created_at,
            "updated_at": p.c.updated_at,
            "id": p.c.id,
        },
        default_ordering=("username",),
        id_column=p.c.id,
    ),
    rules=profiles.RULES,
    after_delete=_remove_image,
    prepare_update=_prepare_update,
    extra_routes=(Route("/profiles/{id:int}/image/", upload_image, methods=["POST"]),),
    doc=ResourceDoc(
        input=profiles.ProfileIn,
        create=profiles.ProfileCreate,
        read_only={"user": int, "full_name": str, "profile_image": str | None},
        write_only=("password",),
        description="POST (admin) creates the user too and takes `password` (at least 10 "
        "characters, not all digits, not the username). To change a password, PATCH your "
        "own profile with `password` and `current_password`, or as an admin `password` "
        "alone; the user's other sessions and tokens end.",
    ),
)

routes = resource_routes(RESOURCE)

media_routes = [
    Route(f"/media/{profile_images.IMAGE_DIR}/{{name}}", serve_image, methods=["GET", "HEAD"]),
]
