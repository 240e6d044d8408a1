"""Who may receive which event, and which events a subscription's filter selects."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from domain.actors import Actor
from domain.sites import site_allows
from domain.topics import OWNER_ONLY_TOPICS, TOPICS
from realtime.wire import HubEvent

__all__ = [
    "OWNER_ONLY_TOPICS",
    "TOPICS",
    "BadFilter",
    "EventFilter",
    "FilterParsers",
    "can_receive",
]

# topic → filter name → (the representation field it tests, the REST filter's value parser);
# given by the API so a socket's filters follow the same rules and messages as REST lists.
FilterParsers = Mapping[str, Mapping[str, tuple[str, Callable[[str], Any]]]]

MAX_FILTER_KEYS = 16
MAX_FILTER_VALUES = 256


def can_receive(actor: Actor, event: HubEvent) -> bool:
    """Same rule as REST reads: notifications are the owner's; private rows owner or managers;
    a key restricted to a site sees that site's rows (parsed only for such keys)."""
    if event.topic in OWNER_ONLY_TOPICS:
        return event.owner_id == actor.id
    if event.private and not actor.can_see_private_of(event.owner_id):
        return False
    if actor.location_id is not None and isinstance(event.data, Mapping):
        return site_allows(actor, event.topic, event.data)
    return True


def _norm(value: Any) -> str:
    """One comparable form for filter values and data values (3 == "3")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return _norm(value.get("id"))
    return str(value)


class BadFilter(ValueError):
    """A filter name or value the topic's REST list would refuse (error frame `bad_filter`)."""

    def __init__(self, name: str, detail: str) -> None:
        super().__init__(f"filter {name!r}: {detail}")
        self.name = name


def _checked(
    name: str, values: list[Any], topics: Collection[str], parsers: FilterParsers
) -> tuple[str, frozenset[str]]:
    """The data field and normalized values of one filter valid for every topic, or BadFilter."""
    fields = set()
    normalized: set[str] = set()
    for topic in topics:
        found = parsers.get(topic, {}).get(name)
        if found is None:
            raise BadFilter(name, f"not a filter of topic {topic!r}")
        field, parse = found
        fields.add(field)
        for value in values:
            try:
                normalized.add(_norm(parse(_norm(value))))
            except ValueError as exc:
                raise BadFilter(name, str(exc)) from None
    if len(fields) > 1:
        raise BadFilter(name, "means different fields in these topics; subscribe separately")
    return (fields.pop() if fields else name), frozenset(normalized)


class EventFilter:
    """`{"facility": [3]}`: every key's data value (or one of a list's) must be allowed."""

    __slots__ = ("allowed",)

    def __init__(self, allowed: dict[str, frozenset[str]]) -> None:
        self.allowed = allowed

    @classmethod
    def parse(
        cls, raw: Any, *, topics: Collection[str] = (), parsers: FilterParsers | None = None
    ) -> EventFilter | None:
        """Validate a client filter; None means "no filter".

        ValueError on a bad shape; BadFilter on a name or value the REST filters of `topics`
        refuse (when `parsers` is given).
        """
        if raw is None or raw == {}:
            return None
        if not isinstance(raw, dict) or len(raw) > MAX_FILTER_KEYS:
            raise ValueError("filter must be an object of field → list of values")
        allowed: dict[str, frozenset[str]] = {}
        for key, values in raw.items():
            listed = values if isinstance(values, list) else [values]
            if len(listed) > MAX_FILTER_VALUES or any(isinstance(v, dict | list) for v in listed):
                raise ValueError(f"filter {key!r}: give a list of plain values")
            if parsers is None:
                allowed[key] = frozenset(_norm(v) for v in listed)
                continue
            field, values = _checked(str(key), listed, topics, parsers)
            allowed[field] = allowed.get(field, frozenset()) | values
        return cls(allowed)

    def matches(self, event: HubEvent) -> bool:
        data = event.data
        if not isinstance(data, Mapping):
            return False
        for key, allowed in self.allowed.items():
            if key not in data:
                # A deletion carries only {"id"}: let it through so filtered views can drop the row.
                if event.action == "deleted":
                    continue
                return False
            value = data[key]
            values = value if isinstance(value, list) else [value]
            if not any(_norm(v) in allowed for v in values):
                return False
        return True
