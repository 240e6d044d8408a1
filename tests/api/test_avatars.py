"""Uploaded pictures are bounded in pixels and served re-encoded without metadata (issue #10
§6): no decompression bomb for browsers, no GPS position or camera in a public file."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from domain.avatars import AVATAR_SIDE_PX, TOO_MANY_PIXELS


def _png(size: tuple[int, int], mode: str = "1") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size).save(out, format="PNG", optimize=True)
    return out.getvalue()


def _jpeg_with_gps(size: tuple[int, int]) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Phone 12"  # Model
    exif[0x8825] = {1: "N", 2: (52.0, 22.0, 12.0), 3: "E", 4: (4.0, 53.0, 24.0)}  # GPSInfo
    out = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(out, format="JPEG", exif=exif)
    return out.getvalue()


async def test_a_giant_image_is_refused_before_decoding(login) -> None:
    operator = await login("operator")
    bomb = _png((12_000, 12_000))
    assert len(bomb) < 100_000  # tiny on the wire, ~550 MiB decoded
    response = await operator.post(
        f"/api/profiles/{operator.user['id']}/image/", files={"image": ("a.png", bomb)}
    )
    assert response.status_code == 400
    assert response.json() == {"image": [TOO_MANY_PIXELS]}


async def test_photos_are_served_small_and_without_metadata(login, app) -> None:
    operator = await login("operator")
    photo = _jpeg_with_gps((1600, 1200))
    with Image.open(io.BytesIO(photo)) as original:
        assert original.getexif().get_ifd(0x8825)  # the upload does carry a position
    response = await operator.post(
        f"/api/profiles/{operator.user['id']}/image/", files={"image": ("me.jpg", photo)}
    )
    assert response.status_code == 200, response.text
    name = response.json()["profile_image"].removeprefix("/media/")
    stored = (Path(app.state.settings.data_dir) / "media" / name).read_bytes()
    assert b"PhoneMaker" not in stored and b"Exif" not in stored
    with Image.open(io.BytesIO(stored)) as served:
        assert served.format == "JPEG"
        assert served.size == (AVATAR_SIDE_PX, AVATAR_SIDE_PX * 3 // 4)
        assert not served.getexif() and "exif" not in served.info
