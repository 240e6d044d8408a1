"""Prebuilt frames are byte-identical to what websockets would send."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode

from realtime.fastsend import raw_protocol, text_frame


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 200_000])
def test_text_frame_matches_websockets(size: int) -> None:
    payload = b"x" * size
    expected = Frame(Opcode.TEXT, payload).serialize(mask=False, extensions=[])
    assert text_frame(payload) == expected


async def test_other_senders_use_asgi() -> None:
    async def send(message: object) -> None:
        return None

    assert raw_protocol(send) is None
