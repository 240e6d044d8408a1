"""The manifest at the head of every archive: what it holds and how to check it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

MANIFEST_NAME = "manifest.json"
FORMAT = "bms-backup"
FORMAT_VERSION = 1


class ArchiveError(Exception):
    """An archive that cannot be trusted or used; the message says why, in one line."""


@dataclass
class Manifest:
    """Schema revision, row counts and checksums: enough to refuse a bad archive up front."""

    backend: str  # postgresql | sqlite
    revision: str | None
    bms_version: str
    created_at: str
    row_counts: dict[str, int]
    database: str  # member name of the dump
    members: dict[str, str] = field(default_factory=dict)  # name -> sha256
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        try:
            data: Any = json.loads(raw)
        except ValueError:
            raise ArchiveError("the manifest is not valid JSON") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ArchiveError("not a BMS backup (the manifest has no bms-backup format)")
        if data.get("format_version") != FORMAT_VERSION:
            raise ArchiveError(f"unsupported backup format version {data.get('format_version')!r}")
        try:
            return cls(
                backend=str(data["backend"]),
                revision=data["revision"],
                bms_version=str(data["bms_version"]),
                created_at=str(data["created_at"]),
                row_counts={str(k): int(v) for k, v in data["row_counts"].items()},
                database=str(data["database"]),
                members={str(k): str(v) for k, v in data["members"].items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ArchiveError(f"the manifest is incomplete ({exc!r})") from None

    @property
    def total_rows(self) -> int:
        return sum(self.row_counts.values())
