"""The floor of bench/rest.py: a bare Starlette app on the same uvicorn (uvloop, httptools).

It answers the request the floor line sends to BMS (an unknown path under /api/) with the
same 404 body, and /readyz with 200, and does nothing else: its CPU per request is what the
HTTP server and Starlette cost on this machine at this moment. Measured at the start and at
the end of a run, it shows how fast the (shared) machine was, and whether that changed.

    .venv/bin/python -m uvicorn bench.bare_server:app --port 8001 --workers 2
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def ready(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


async def not_found(request: Request) -> Response:
    return Response(b'{"detail":"Not found."}', 404, media_type="application/json")


app = Starlette(routes=[Route("/readyz", ready), Route("/{path:path}", not_found)])
