"""The event as it travels through the broadcaster and the hub: rendered once per process."""

from __future__ import annotations

from typing import Any

import orjson

from db.effects import CommittedEvent
from realtime.fastsend import text_frame

_UNPARSED: Any = object()


class HubEvent:
    """An event with its frame rendered once; `data` is parsed only if a filter asks."""

    __slots__ = ("_data", "_wire", "action", "frame", "id", "owner_id", "private", "topic")

    def __init__(
        self, *, id: int, topic: str, action: str, owner_id: int | None, private: bool, frame: str
    ) -> None:
        self.id = id
        self.topic = topic
        self.action = action
        self.owner_id = owner_id
        self.private = private
        self.frame = frame
        self._data: Any = _UNPARSED
        self._wire: bytes | None = None

    @property
    def wire(self) -> bytes:
        """The whole WebSocket frame as bytes, built on first use and shared by every socket."""
        if self._wire is None:
            self._wire = text_frame(self.frame.encode())
        return self._wire

    @property
    def data(self) -> Any:
        """The REST representation the event carries (parsed lazily, once per process)."""
        if self._data is _UNPARSED:
            self._data = orjson.loads(self.frame)["data"]
        return self._data

    @classmethod
    def from_committed(cls, event: CommittedEvent) -> HubEvent:
        return cls(
            id=event.id,
            topic=event.topic,
            action=event.action,
            owner_id=event.owner_id,
            private=event.private,
            frame=event.to_message().decode(),
        )

    @classmethod
    def from_row(cls, row: Any) -> HubEvent:
        return cls.from_committed(CommittedEvent.from_row(row))


def encode(event: CommittedEvent) -> str:
    """Broadcaster message: a small routing header, a newline, then the finished frame."""
    head = orjson.dumps([event.id, event.topic, event.action, event.owner_id, event.private])
    return head.decode() + "\n" + event.to_message().decode()


def decode(message: str) -> HubEvent:
    """Inverse of `encode`; the frame is kept as text and never re-serialized."""
    head, _, frame = message.partition("\n")
    event_id, topic, action, owner_id, private = orjson.loads(head)
    return HubEvent(
        id=event_id, topic=topic, action=action, owner_id=owner_id, private=private, frame=frame
    )
