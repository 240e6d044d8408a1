"""Progress bars for long CLI work: tqdm on stderr when it is a terminal, else nothing."""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager, nullcontext
from typing import Any


def bar(
    total: int | None, unit: str, *, scale: bool = False, desc: str = ""
) -> AbstractContextManager[Any]:
    """A tqdm bar (None when stderr is not a terminal: logs and pipes stay clean)."""
    if not sys.stderr.isatty():
        return nullcontext(None)
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, unit_scale=scale, desc=desc, file=sys.stderr, leave=False)


def updater(progress: Any) -> Any:
    """`progress.update`, or None without a bar (what the lower layers take)."""
    return None if progress is None else progress.update
