"""WebSocket filters are checked with the REST list filters of each topic (CONTRACT §5)."""

from __future__ import annotations

import json

import pytest

from api.routes import ROUTES
from api.subscriptions import filter_parsers
from realtime.visibility import BadFilter, EventFilter
from realtime.wire import HubEvent

PARSERS = filter_parsers(ROUTES)


def _event(topic: str, data: dict) -> HubEvent:
    frame = json.dumps({"type": "event", "id": 1, "topic": topic, "data": data})
    return HubEvent(id=1, topic=topic, action="updated", owner_id=None, private=False, frame=frame)


@pytest.mark.parametrize(
    ("topics", "raw", "message"),
    [
        (["shifts"], {"facility": ["abc"]}, "filter 'facility': Enter a whole number."),
        (["shifts"], {"colour": [1]}, "filter 'colour': not a filter of topic 'shifts'"),
        (["shifts"], {"user": [2**31]}, "filter 'user': Ensure this value is between"),
        (["shifts"], {"status": ["x\x00"]}, "filter 'status': Null characters are not allowed."),
        (["shifts", "locations"], {"facility": [1]}, "filter 'facility': not a filter of topic"),
        (["incident-tickets"], {"on_air_impact": ["maybe"]}, "filter 'on_air_impact': Enter"),
    ],
)
def test_a_bad_filter_names_the_filter(topics: list[str], raw: dict, message: str) -> None:
    with pytest.raises(BadFilter) as bad:
        EventFilter.parse(raw, topics=topics, parsers=PARSERS)
    assert str(bad.value).startswith(message)
    assert bad.value.name == next(iter(raw))


def test_good_filters_select_like_rest() -> None:
    parsed = EventFilter.parse(
        {"facility": ["3", 4], "on_air_impact": [True]},
        topics=["incident-tickets"],
        parsers=PARSERS,
    )
    assert parsed is not None
    assert parsed.matches(_event("incident-tickets", {"facility": 3, "on_air_impact": True}))
    assert not parsed.matches(_event("incident-tickets", {"facility": 5, "on_air_impact": True}))
    attendee = EventFilter.parse({"attendee": [7]}, topics=["scheduled-events"], parsers=PARSERS)
    assert attendee is not None  # REST's `?attendee=` selects on the `attendees` list
    assert attendee.matches(_event("scheduled-events", {"attendees": [1, 7]}))
    assert not attendee.matches(_event("scheduled-events", {"attendees": [1]}))
