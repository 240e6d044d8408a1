"""What a Resource tells the OpenAPI generator beyond its routes (plain data, no Starlette)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel


@dataclass(frozen=True)
class ResourceDoc:
    """The schemas a resource validates with, and how its representation differs from them.

    The representation is the input schema's fields (less `write_only`) plus `id`,
    `created_at`, `updated_at` and `read_only` (name → Python type); `output_types`
    narrows the type of an input field in output (e.g. a defaulted `priority` is never null).
    """

    input: type[BaseModel]
    create: type[BaseModel] | None = None  # POST body when it differs (e.g. takes a password)
    create_only: Mapping[str, Any] = field(default_factory=dict)  # extra POST-only fields
    read_only: Mapping[str, Any] = field(default_factory=dict)
    output_types: Mapping[str, Any] = field(default_factory=dict)
    write_only: Sequence[str] = ()
    description: str = ""
