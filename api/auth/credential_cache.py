"""Credentials this process recently found live, so a request skips the database round trip
of its bearer or session check (#15: one of a detail read's two round trips).

Trusted only while the revocation channel is up. Every ended credential (logout, a revoked
token or API key, a new password, deactivation, a role change) is broadcast after its commit
on the realtime hub's control channel, and each process drops that user's entries when the
message arrives, within milliseconds. Bounds, for what a broadcast cannot carry:

- nothing is served or stored while the channel is down, and entries from before a
  reconnection are dropped (revocations may have been lost in the gap);
- a revocation that arrives while a lookup is in flight keeps that lookup out of the cache
  (its database read may predate the revocation's commit);
- an entry lives at most `max_age_secs` (a revocation whose broadcast failed, or a change
  made to the database outside BMS) and never past its credential's expiry;
- site-restricted API keys are never cached: their site's facilities can change.

`AUTH_CACHE_SECS=0` turns it off: every request checks the database.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from domain.actors import Actor

ChannelEpoch = Callable[[], int | None]  # the channel's connection count, None while down
MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class Ticket:
    """Taken before a lookup's database read; `store` refuses it if anything changed since."""

    generation: int
    epoch: int | None


@dataclass(frozen=True, slots=True)
class _Entry:
    actor: Actor
    stored_at: float
    epoch: int


def _down() -> int | None:
    return None


class CredentialCache:
    """Credential string → the actor it authenticated, per process; see the module docstring."""

    def __init__(
        self,
        *,
        max_age_secs: float,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_age_secs = max_age_secs
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._generation = 0
        self._channel_epoch: ChannelEpoch = _down

    def attach(self, channel_epoch: ChannelEpoch) -> None:
        """Start trusting entries while `channel_epoch()` says the revocation channel is up."""
        self._channel_epoch = channel_epoch

    def detach(self) -> None:
        """Stop trusting anything (the revocation channel is gone) and forget every entry."""
        self._channel_epoch = _down
        self.clear()

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, kind: str, credential: str, *, now: datetime) -> Actor | None:
        """The cached actor for this credential (`kind`: bearer or session), or None to ask
        the database."""
        key = (kind, credential)
        entry = self._entries.get(key)
        if entry is None:
            return None
        actor = entry.actor
        if (
            entry.epoch != self._channel_epoch()
            or self._clock() - entry.stored_at >= self.max_age_secs
            or (actor.expires_at is not None and actor.expires_at <= now)
        ):
            del self._entries[key]
            return None
        return actor

    def ticket(self) -> Ticket:
        """Take before reading the database for a credential that `lookup` did not know."""
        return Ticket(self._generation, self._channel_epoch())

    def store(self, kind: str, credential: str, actor: Actor, ticket: Ticket) -> None:
        """Remember a live credential unless a revocation or reconnection came in between."""
        if (
            self.max_age_secs <= 0
            or ticket.epoch is None
            or ticket.generation != self._generation
            or ticket.epoch != self._channel_epoch()
            or actor.location_id is not None
        ):
            return
        if len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]  # the oldest stored
        self._entries[(kind, credential)] = _Entry(actor, self._clock(), ticket.epoch)

    def revoke(self, user_id: int) -> None:
        """A credential of this user ended, or their role changed: forget all of theirs."""
        self._generation += 1
        for key in [key for key, e in self._entries.items() if e.actor.id == user_id]:
            del self._entries[key]
