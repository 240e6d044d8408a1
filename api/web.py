"""Pages and browser files served by BMS itself: `/`, the wall display and /static/.

Files ship in the package (api/static). The wall's assets are served under
`/static/v/<version>/<name>`, where the version is a hash over every static file: they can
be cached for a year, and a new release changes every URL at once (relative ES module
imports stay within one version). The HTML pages are revalidated on each load.
"""

from __future__ import annotations

import functools
import hashlib
from importlib import resources

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from api.responses import error_response

STATIC_PACKAGE = "api"
STATIC_DIR = "static"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
}
# The wall runs only its own files: no inline script or style, no other origin, no framing.
WALL_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": WALL_CSP,
    "X-Content-Type-Options": "nosniff",
    # The key lives in the fragment, which browsers never send; no referrer either.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": REVALIDATE,
}


@functools.cache
def static_files() -> dict[str, bytes]:
    """Name → content of every shipped static file (read once per process)."""
    folder = resources.files(STATIC_PACKAGE) / STATIC_DIR
    return {
        entry.name: entry.read_bytes()
        for entry in folder.iterdir()
        if entry.is_file() and not entry.name.startswith(".")
    }


@functools.cache
def version() -> str:
    """A hash over every static file: the cache-busting part of asset URLs."""
    digest = hashlib.sha256()
    for name, content in sorted(static_files().items()):
        digest.update(name.encode() + b"\0" + content + b"\0")
    return digest.hexdigest()[:16]


def _media_type(name: str) -> str:
    return MEDIA_TYPES.get(name[name.rfind(".") :], "application/octet-stream")


def _file_response(name: str, cache_control: str) -> Response:
    content = static_files().get(name)
    if content is None or name.endswith(".html"):
        return error_response("Not found.", 404)  # the documented JSON shape, like every 404
    etag = '"' + hashlib.sha256(content).hexdigest()[:24] + '"'
    headers = {
        "Cache-Control": cache_control,
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
    }
    return Response(content, media_type=_media_type(name), headers=headers)


async def versioned_asset(request: Request) -> Response:
    """An asset of this release (immutable); another release's name gets today's file, uncached."""
    name = request.path_params["name"]
    current = request.path_params["version"] == version()
    return _file_response(name, IMMUTABLE if current else REVALIDATE)


async def realtime_client(request: Request) -> Response:
    """The unversioned browser client, for dashboards that import it by a stable URL."""
    return _file_response("bms-realtime.js", REVALIDATE)


async def wall(request: Request) -> Response:
    """The control-room wall display (its key comes in the URL fragment, never sent here)."""
    page = static_files()["wall.html"].decode().replace("{{static}}", f"/static/v/{version()}")
    return HTMLResponse(page, headers=PAGE_HEADERS)


async def index(request: Request) -> Response:
    """A person who opens the server's address finds the API docs and the wall."""
    page = static_files()["index.html"].decode().replace("{{static}}", f"/static/v/{version()}")
    return HTMLResponse(page, headers=PAGE_HEADERS)


routes = [
    Route("/", index, methods=["GET"]),
    Route("/wall/", wall, methods=["GET"]),
    Route("/static/bms-realtime.js", realtime_client, methods=["GET"]),
    Route("/static/v/{version}/{name}", versioned_asset, methods=["GET"]),
]
