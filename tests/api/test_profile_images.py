"""Profile images: content-checked upload (owner or admin), storage, serving by safe name."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest
from PIL import Image
from starlette.applications import Starlette

from api.resources.profiles import media_routes
from domain import profile_images
from domain.avatars import MAX_IMAGE_BYTES
from tests.builders.profiles import image_bytes


def _upload_url(profile: dict) -> str:
    return f"/api/profiles/{profile['id']}/image/"


def _media_root(app) -> Path:
    return Path(app.state.settings.data_dir) / "media"


def _stored_file(app, profile: dict) -> Path:
    return _media_root(app) / profile["profile_image"].removeprefix("/media/")


def _media_client(app) -> httpx.AsyncClient:
    """/media/ as mounted at the top level, on the same settings as the app under test."""
    media_app = Starlette(routes=media_routes)
    media_app.state.settings = app.state.settings
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=media_app), base_url="http://testserver"
    )


@pytest.mark.parametrize(
    ("image_format", "ext"), [("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp")]
)
async def test_owner_uploads_image_and_it_is_served(login, app, image_format, ext) -> None:
    operator = await login("operator")
    data = image_bytes(image_format)
    response = await operator.post(
        _upload_url(operator.user), files={"image": ("selfie.gif", data, "image/gif")}
    )
    assert response.status_code == 200, response.text
    profile = response.json()
    assert profile["profile_image"].startswith(f"/media/profile-images/{profile['id']}-")
    assert profile["profile_image"].endswith(f".{ext}")  # by content, not the client's name
    assert response.headers["ETag"]
    assert (await operator.get(_upload_url(operator.user)[: -len("image/")])).json() == profile
    stored = _stored_file(app, profile).read_bytes()
    with Image.open(io.BytesIO(stored)) as image:  # re-encoded, same format and size
        assert image.format == image_format and image.size == (8, 8)
    async with _media_client(app) as media:
        served = await media.get(profile["profile_image"])
    assert served.status_code == 200 and served.content == stored
    assert served.headers["content-type"] == f"image/{'jpeg' if ext == 'jpg' else ext}"
    assert served.headers["x-content-type-options"] == "nosniff"


async def test_reupload_replaces_the_old_file(login, app) -> None:
    operator = await login("operator")
    first = (
        await operator.post(_upload_url(operator.user), files={"image": ("a", image_bytes())})
    ).json()
    second = (
        await operator.post(_upload_url(operator.user), files={"image": ("b", image_bytes("JPEG"))})
    ).json()
    assert second["profile_image"] != first["profile_image"]
    assert _stored_file(app, second).is_file()
    assert not _stored_file(app, first).exists()


async def test_deleting_the_profile_deletes_its_image(login, app) -> None:
    admin = await login("admin")
    operator = await login("operator")
    profile = (
        await operator.post(_upload_url(operator.user), files={"image": ("a", image_bytes())})
    ).json()
    assert _stored_file(app, profile).is_file()
    assert (await admin.delete(f"/api/profiles/{profile['id']}/")).status_code == 204
    assert not _stored_file(app, profile).exists()
    async with _media_client(app) as media:
        assert (await media.get(profile["profile_image"])).status_code == 404


async def test_an_image_that_cannot_be_removed_does_not_fail_the_delete(
    login, app, monkeypatch
) -> None:
    admin = await login("admin")
    operator = await login("operator")
    profile = (
        await operator.post(_upload_url(operator.user), files={"image": ("a", image_bytes())})
    ).json()

    def refuse(path) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(profile_images, "_remove_file", refuse)  # e.g. a read-only volume
    assert (await admin.delete(f"/api/profiles/{profile['id']}/")).status_code == 204
    assert (await admin.get(f"/api/profiles/{profile['id']}/")).status_code == 404


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("x.png", b"this is only text, named like a picture"),
        ("x.gif", image_bytes("GIF")),
        ("x.png", image_bytes("PNG")[:40]),
        ("x.png", b""),
    ],
)
async def test_non_images_are_rejected(login, app, name, content) -> None:
    operator = await login("operator")
    response = await operator.post(
        _upload_url(operator.user), files={"image": (name, content, "image/png")}
    )
    assert response.status_code == 400
    assert list(response.json()) == ["image"]
    assert (await operator.get(f"/api/profiles/{operator.user['id']}/")).json()[
        "profile_image"
    ] is None


async def test_oversize_is_rejected(login) -> None:
    operator = await login("operator")
    big = image_bytes() + b"\0" * MAX_IMAGE_BYTES
    response = await operator.post(_upload_url(operator.user), files={"image": ("x.png", big)})
    assert response.status_code == 400
    assert "2 MiB" in response.json()["image"][0]
    huge = b"\0" * (5 * 1024 * 1024)
    response = await operator.post(_upload_url(operator.user), files={"image": ("x.png", huge)})
    assert response.status_code == 413


async def test_wrong_body_and_missing_field(login) -> None:
    operator = await login("operator")
    url = _upload_url(operator.user)
    assert (await operator.post(url, json={"image": "x"})).status_code == 415
    response = await operator.post(url, files={"other": ("x.png", image_bytes())})
    assert response.status_code == 400 and list(response.json()) == ["image"]


async def test_only_owner_or_admin_may_upload(login, client) -> None:
    owner = await login("operator")
    url = _upload_url(owner.user)
    files = {"image": ("x.png", image_bytes())}
    for role in ("viewer", "operator", "manager"):
        other = await login(role)
        assert (await other.post(url, files=files)).status_code == 403, role
    assert (await client.post(url, files=files)).status_code == 401
    admin = await login("admin")
    assert (await admin.post(url, files=files)).status_code == 200
    assert (await admin.post("/api/profiles/999999/image/", files=files)).status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/media/profile-images/..%2Fsecret_key",
        "/media/profile-images/1-0123456789abcdef0123456789abcdef.png",
        "/media/profile-images/secret_key",
        "/media/profile-images/1-0123456789abcdef.txt",
    ],
)
async def test_media_serves_only_stored_images(app, path) -> None:
    async with _media_client(app) as media:
        response = await media.get(path)
    assert response.status_code == 404
