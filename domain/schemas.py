"""Validation helpers shared by every resource: pydantic in, DRF-shaped errors out."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

from db.types import dumps
from domain.errors import PreconditionFailed, ValidationFailed
from domain.limits import ONE_LINE, TextRule, check_value

ModelT = TypeVar("ModelT", bound=BaseModel)

_MESSAGES = {
    "missing": "This field is required.",
    "string_too_long": "Ensure this field has no more than {max_length} characters.",
    "string_too_short": "Ensure this field has at least {min_length} characters.",
    "int_parsing": "A valid integer is required.",
    "int_type": "A valid integer is required.",
    "bool_parsing": "Must be a valid boolean.",
    "bool_type": "Must be a valid boolean.",
    "datetime_parsing": "Datetime has wrong format. Use ISO 8601 with an offset.",
    "datetime_from_date_parsing": "Datetime has wrong format. Use ISO 8601 with an offset.",
    "datetime_type": "Datetime has wrong format. Use ISO 8601 with an offset.",
    "timezone_aware": "Datetime must include a UTC offset (naive datetimes are not accepted).",
    "date_parsing": "Date has wrong format. Use YYYY-MM-DD.",
    "date_from_datetime_parsing": "Date has wrong format. Use YYYY-MM-DD.",
    "date_type": "Date has wrong format. Use YYYY-MM-DD.",
    "string_type": "Not a valid string.",
    "list_type": "Expected a list of items.",
}


class Schema(BaseModel):
    """Base of input schemas: unknown fields are ignored, as DRF does."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)

    @field_validator("*", mode="after")
    @classmethod
    def _within_limits(cls, value: Any, info: ValidationInfo) -> Any:
        """Every field obeys domain.limits, so no schema can forget a rule (CONTRACT §5)."""
        return check_value(value, _rule_of(cls, info.field_name or ""))


@functools.cache
def _rule_of(model: type[BaseModel], field_name: str) -> TextRule:
    """The `TextRule` a field declares, else ONE_LINE: looked up once per schema and field
    (schemas are classes defined at import), not for every field of every request."""
    field = model.model_fields.get(field_name)
    metadata = field.metadata if field is not None else []
    return next((m for m in metadata if isinstance(m, TextRule)), ONE_LINE)


def _message(error: Mapping[str, Any]) -> str:
    template = _MESSAGES.get(error["type"])
    if template is not None:
        try:
            return template.format(**error.get("ctx", {}))
        except (KeyError, IndexError):
            return template
    if error["type"] == "literal_error":
        return f'"{error.get("input")}" is not a valid choice.'
    return str(error["msg"]).removeprefix("Value error, ")


def validation_failed(exc: ValidationError) -> ValidationFailed:
    """Convert pydantic's errors to DRF's `{"field": ["message"]}` shape."""
    errors: dict[str, list[str]] = {}
    for error in exc.errors():
        loc = error["loc"]
        field = str(loc[0]) if loc else "non_field_errors"
        errors.setdefault(field, []).append(_message(error))
    return ValidationFailed(errors)


def validate(model: type[ModelT], data: Mapping[str, Any]) -> ModelT:
    """Validate `data` into `model` or raise ValidationFailed (400)."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        raise validation_failed(exc) from None


def merge_for_update(
    current: Mapping[str, Any], changes: Mapping[str, Any], *, partial: bool, required: set[str]
) -> dict[str, Any]:
    """Overlay `changes` on the current values; PUT must still name every required field."""
    if not partial:
        missing = sorted(name for name in required if name not in changes)
        if missing:
            raise ValidationFailed({name: ["This field is required."] for name in missing})
    return {**current, **changes}


def etag_of(representation: Mapping[str, Any]) -> str:
    """Strong ETag of a REST representation: changes whenever any field does."""
    return etag_of_json(dumps(representation))


def etag_of_json(body: bytes) -> str:
    """`etag_of` from the representation already rendered (`dumps`): render once, use twice."""
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def check_if_match(representation: Mapping[str, Any], if_match: str | None) -> None:
    """Raise PreconditionFailed (412) when `If-Match` names another version."""
    if if_match is None:
        return
    candidates = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    if "*" in candidates:
        return
    if etag_of(representation) not in candidates:
        raise PreconditionFailed()


def changed_fields(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Field → [old, new] for every field whose value differs (history entries)."""
    return {
        key: [before.get(key), value]
        for key, value in after.items()
        if key in before and before[key] != value
    }
