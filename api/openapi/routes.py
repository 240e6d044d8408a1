"""GET /api/schema/ (the OpenAPI document) and /api/docs/ (Swagger UI, assets served locally).

Both are public: the document describes the API, it grants nothing.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from api.openapi.generator import build_document
from api.responses import JSONResponse

# Swagger UI 5 (the first to read OpenAPI 3.1), as shipped by the swagger-ui-py package.
SWAGGER_UI_PACKAGE = "swagger_ui"
ASSETS_PATH = "/docs/assets"

# The page's one inline script, allowed by its hash in the page's CSP.
DOCS_SCRIPT = """
    window.ui = SwaggerUIBundle({
      url: "../schema/",
      dom_id: "#swagger-ui",
      deepLinking: true,
      withCredentials: true,
      validatorUrl: null,
      requestInterceptor: (request) => {
        const token = document.cookie.match(/(?:^|; )csrftoken=([^;]*)/);
        if (token) request.headers["X-CSRFToken"] = decodeURIComponent(token[1]);
        return request;
      },
    });
  """
# Relative URLs: the page works under any prefix a proxy adds, and loads nothing remote.
DOCS_HTML = (
    """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>BMS API</title>
  <link rel="stylesheet" href="assets/swagger-ui.css">
  <link rel="icon" type="image/png" href="assets/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="assets/swagger-ui-bundle.js"></script>
  <script>"""
    + DOCS_SCRIPT
    + """</script>
</body>
</html>
"""
)


_SCRIPT_HASH = base64.b64encode(hashlib.sha256(DOCS_SCRIPT.encode()).digest()).decode()
# Swagger UI from this server only (validator badge off: it would load a remote image).
DOCS_CSP = (
    f"default-src 'none'; script-src 'self' 'sha256-{_SCRIPT_HASH}'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def swagger_ui_dir() -> Path:
    """The directory of Swagger UI's static files (found without importing the package)."""
    spec = importlib.util.find_spec(SWAGGER_UI_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed (it is a dependency of bms).")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def openapi_document(request: Request) -> dict[str, Any]:
    """Build the document once per app: the routing table does not change while it runs."""
    state = request.app.state
    document = getattr(state, "openapi_document", None)
    if document is None:
        document = build_document(request.app.routes)
        state.openapi_document = document
    return document


async def schema(request: Request) -> Response:
    return JSONResponse(openapi_document(request))


async def docs(request: Request) -> Response:
    return HTMLResponse(DOCS_HTML, headers={"Content-Security-Policy": DOCS_CSP})


def docs_routes() -> list[BaseRoute]:
    return [
        Route("/schema/", schema, methods=["GET"]),
        Route("/docs/", docs, methods=["GET"]),
        Mount(ASSETS_PATH, app=StaticFiles(directory=swagger_ui_dir()), name="docs-assets"),
    ]


routes = docs_routes()
