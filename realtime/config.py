"""What the realtime layer needs to know, handed down by the composition root.

`realtime/` never imports `bms.settings` (imports point down only): the root builds a
`RealtimeSettings` with `bms.settings.Settings.realtime_settings()`, which copies every
field below from the field of the same name. A new setting realtime needs: add it here
with the same name as in `bms/settings.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RealtimeSettings:
    """Pub/sub backend, channel names, socket limits (no defaults: those are in Settings)."""

    redis_url: str  # empty: in-process `memory://` pub/sub (embedded mode)
    channel_namespace: str  # prefix of Redis channels
    ws_queue_max_events: int  # per socket; overflow closes it with 4008
    allowed_origins: Sequence[str]  # browsers' Origin on the handshake
    fast_paths: bool  # FAST_PATHS: inline and prebuilt-frame writes (eager.py, fastsend.py)
