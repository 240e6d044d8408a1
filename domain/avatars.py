"""Uploaded pictures become avatars: checked by content, bounded in pixels, and re-encoded at
avatar size with no metadata, so nothing the camera recorded (GPS position, device) is served
and no client decodes a giant image."""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps

from domain.errors import ValidationFailed

MAX_IMAGE_BYTES = 2 * 1024 * 1024
# Header dimensions, checked before any pixel is decoded: a 17.5 KB 1-bit PNG can claim
# 12,000 x 12,000 pixels (~550 MiB for a browser to decode).
MAX_SIDE_PX = 4096
AVATAR_SIDE_PX = 512
# Pillow format name → the extension the stored file gets (the client's name is ignored).
EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}
NOT_AN_IMAGE = "Upload a valid image: PNG, JPEG or WebP."
TOO_LARGE = f"The image is too large (limit {MAX_IMAGE_BYTES // (1024 * 1024)} MiB)."
TOO_MANY_PIXELS = f"The image is too large (at most {MAX_SIDE_PX} x {MAX_SIDE_PX} pixels)."
_SAVE_OPTIONS: dict[str, dict[str, int | bool]] = {
    "JPEG": {"quality": 88},
    "WEBP": {"quality": 88},
    "PNG": {"optimize": True},
}


def _bad(message: str) -> ValidationFailed:
    return ValidationFailed.on("image", message)


def _format_and_size(data: bytes) -> tuple[str, tuple[int, int]]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image.verify()
                return str(image.format), image.size
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise _bad(TOO_MANY_PIXELS) from None
    except Exception:  # Pillow raises many kinds for junk
        raise _bad(NOT_AN_IMAGE) from None


def prepare_avatar(data: bytes) -> tuple[str, bytes]:
    """(extension, re-encoded bytes) for an uploaded PNG, JPEG or WebP; else 400 on `image`.

    CPU-bound: callers run it off the event loop.
    """
    if not data:
        raise _bad("The submitted file is empty.")
    if len(data) > MAX_IMAGE_BYTES:
        raise _bad(TOO_LARGE)
    image_format, (width, height) = _format_and_size(data)
    if image_format not in EXTENSIONS:
        raise _bad(NOT_AN_IMAGE)
    if width > MAX_SIDE_PX or height > MAX_SIDE_PX:
        raise _bad(TOO_MANY_PIXELS)
    try:
        with Image.open(io.BytesIO(data)) as image:
            upright = ImageOps.exif_transpose(image)  # keep how it looked, drop the tag
            keeps_alpha = "A" in upright.getbands() or "transparency" in upright.info
            mode = "RGBA" if keeps_alpha and image_format != "JPEG" else "RGB"
            pixels = upright.convert(mode)
            pixels.thumbnail((AVATAR_SIDE_PX, AVATAR_SIDE_PX))
            # Pixels only: a fresh image carries no EXIF, XMP, ICC or text chunks.
            clean = Image.frombytes(mode, pixels.size, pixels.tobytes())
            out = io.BytesIO()
            clean.save(out, format=image_format, **_SAVE_OPTIONS[image_format])
    except ValidationFailed:
        raise
    except Exception:  # truncated or corrupt pixel data that passed the header check
        raise _bad(NOT_AN_IMAGE) from None
    return EXTENSIONS[image_format], out.getvalue()
