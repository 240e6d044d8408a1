"""`bms subscribe` helpers: URLs, filters, human-readable lines."""

from __future__ import annotations

import pytest

from realtime.client import format_event, http_base, parse_filters, ws_url


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:8000", "ws://127.0.0.1:8000/ws/"),
        ("https://bms.example/", "wss://bms.example/ws/"),
        ("ws://h:1/ws/", "ws://h:1/ws/"),
        ("h:8000", "ws://h:8000/ws/"),
    ],
)
def test_ws_url(given: str, expected: str) -> None:
    assert ws_url(given) == expected


def test_http_base() -> None:
    assert http_base("wss://bms.example/ws/") == "https://bms.example"


def test_parse_filters() -> None:
    assert parse_filters(["facility=3", "facility=4,5", "status=open"]) == {
        "facility": ["3", "4", "5"],
        "status": ["open"],
    }
    with pytest.raises(ValueError):
        parse_filters(["facility"])


def test_format_event() -> None:
    line = format_event(
        {
            "type": "event",
            "id": 12,
            "topic": "incident-tickets",
            "action": "updated",
            "at": "2026-11-26T06:00:01.5Z",
            "data": {"id": 5, "number": "INC-5", "status": "open"},
        }
    )
    assert line == "06:00:01 #12 incident-tickets updated id=5 number=INC-5 status=open"
