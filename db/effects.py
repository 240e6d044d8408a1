"""What a committed transaction leaves behind, and the one sink it leaves through.

A unit of work collects three kinds of after-commit effects while it runs:

- events (`uow.emit`): fanned out to this process's sockets and published to Redis;
- revocations (`uow.revoke`): sockets opened with ended credentials are closed;
- tasks (`uow.enqueue`): handed to the task broker (email delivery).

After the commit it hands them, in that order, to the `EffectSink` of its store. The
composition root (the app factory, `bms worker`, `bms scheduler`, the CLI) creates the
sink and plugs in where each kind goes (`sink.plugged(...)`); nothing else does. An
unplugged end drops its effects, which is always safe: events stay in the events table
(the relay publishes them), a queued email stays queued (the outbox sweep enqueues it),
and a process without a realtime hub has no sockets to close.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from db.types import dumps

logger = logging.getLogger("bms.effects")


@dataclass(frozen=True, slots=True)
class CommittedEvent:
    """An event as stored: `data` is the JSON text of the REST representation."""

    id: int
    topic: str
    action: str
    object_id: int
    data: str
    owner_id: int | None
    private: bool
    created_at: datetime

    def to_message(self) -> bytes:
        """Render the WebSocket `event` frame; `data` is spliced in, never re-serialized."""
        head = dumps(
            {
                "type": "event",
                "id": self.id,
                "topic": self.topic,
                "action": self.action,
                "at": self.created_at,
            }
        )
        return head[:-1] + b',"data":' + self.data.encode() + b"}"

    @classmethod
    def from_row(cls, row: Any) -> CommittedEvent:
        return cls(**{column.name: row[column.name] for column in fields(cls)})


@dataclass(frozen=True, slots=True)
class Revocation:
    """A user's credentials ended: one session key hash or token jti, or None for all."""

    user_id: int
    credential_id: str | None = None


@dataclass(frozen=True, slots=True)
class QueuedTask:
    """A task to hand to the broker once the rows it works on are committed."""

    name: str
    args: tuple[Any, ...] = ()


PublishEvents = Callable[[Sequence[CommittedEvent]], Awaitable[None]]
RevokeCredentials = Callable[[Revocation], Awaitable[None]]
EnqueueTask = Callable[[QueuedTask], Awaitable[None]]


@dataclass
class Effects:
    """What one transaction produced for after its commit."""

    events: list[CommittedEvent] = field(default_factory=list)
    revocations: list[Revocation] = field(default_factory=list)
    tasks: list[QueuedTask] = field(default_factory=list)


class _Keep:
    """Default of `EffectSink.plugged`: leave that end as it is."""


KEEP = _Keep()


class EffectSink:
    """The one place every after-commit effect leaves through; see the module docstring."""

    def __init__(
        self,
        *,
        publish: PublishEvents | None = None,
        revoke: RevokeCredentials | None = None,
        enqueue: EnqueueTask | None = None,
    ) -> None:
        self.publish = publish
        self.revoke = revoke
        self.enqueue = enqueue

    @contextmanager
    def plugged(
        self,
        *,
        publish: PublishEvents | _Keep | None = KEEP,
        revoke: RevokeCredentials | _Keep | None = KEEP,
        enqueue: EnqueueTask | _Keep | None = KEEP,
    ) -> Iterator[EffectSink]:
        """Send effects to the given ends (None: nowhere) while the block runs, then restore
        every end as it was."""
        previous = (self.publish, self.revoke, self.enqueue)
        if not isinstance(publish, _Keep):
            self.publish = publish
        if not isinstance(revoke, _Keep):
            self.revoke = revoke
        if not isinstance(enqueue, _Keep):
            self.enqueue = enqueue
        try:
            yield self
        finally:
            self.publish, self.revoke, self.enqueue = previous

    async def deliver(self, effects: Effects) -> None:
        """Hand over what a committed transaction produced; never fail the committed write."""
        if effects.events and self.publish is not None:
            await _guarded(self.publish, effects.events, "publish events")
        if self.revoke is not None:
            for revocation in effects.revocations:
                await _guarded(self.revoke, revocation, "revoke credentials")
        if self.enqueue is not None:
            for task in effects.tasks:
                await _guarded(self.enqueue, task, "enqueue a task")


async def _guarded(end: Callable[[Any], Awaitable[None]], effect: Any, what: str) -> None:
    try:
        await end(effect)
    except Exception:  # the transaction committed; the relay, sweep or revalidation catch up
        logger.exception("after-commit: could not %s", what)
