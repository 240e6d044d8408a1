"""Write a prebuilt event frame straight to uvicorn's transport: framed once per process.

Server-to-client frames are unmasked, so with per-message compression off the bytes of an
event frame are the same for every socket. Through ASGI, uvicorn would encode and frame the
text again for each socket; here it is written as is. Used only for uvicorn's
websockets-sansio protocol with no extension negotiated and only while the socket is open
and writable; otherwise callers use the ASGI `send` (same ordering, same backpressure).

Private API relied on (tests/test_fast_path_contracts.py checks it on a real uvicorn
socket; FAST_PATHS=0 sends every frame through ASGI `send`): the ASGI `send` uvicorn hands
the app is its `WebSocketsSansIOProtocol.send` bound method, whose protocol has
`transport`, `conn` (a websockets `ServerProtocol`: `state`, `extensions`), `writable`,
`disconnected` and `close_sent`.
"""

from __future__ import annotations

from typing import Any

from starlette.types import Send
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

_TEXT_FIN = 0x81


def text_frame(payload: bytes) -> bytes:
    """A final, unmasked text frame (RFC 6455 §5.2)."""
    n = len(payload)
    if n < 126:
        return bytes((_TEXT_FIN, n)) + payload
    if n < 1 << 16:
        return bytes((_TEXT_FIN, 126)) + n.to_bytes(2, "big") + payload
    return bytes((_TEXT_FIN, 127)) + n.to_bytes(8, "big") + payload


def raw_protocol(send: Send) -> Any | None:
    """The uvicorn protocol behind an ASGI `send`, if frames can be written to it directly."""
    proto = getattr(send, "__self__", None)
    if not isinstance(proto, WebSocketsSansIOProtocol):  # ours (realtime.uvproto) included
        return None
    conn = getattr(proto, "conn", None)
    if conn is None or getattr(conn, "extensions", None) or not hasattr(proto, "writable"):
        return None
    if not all(hasattr(proto, name) for name in ("transport", "disconnected", "close_sent")):
        return None
    return proto


def try_write(proto: Any, frame: bytes) -> bool:
    """Write `frame` if the socket is open and not paused; False means "use ASGI send"."""
    if (
        proto.disconnected
        or proto.close_sent
        or not proto.writable.is_set()
        or proto.conn.state is not State.OPEN
    ):
        return False
    proto.transport.write(frame)
    return True
