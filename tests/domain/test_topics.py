"""Realtime topics come from the domain modules: each one that has a TOPIC is subscribable."""

from __future__ import annotations

import importlib
import pkgutil

import domain
from realtime.visibility import TOPICS


def test_every_domain_topic_is_subscribable() -> None:
    declared = set()
    for info in pkgutil.iter_modules(domain.__path__):
        module = importlib.import_module(f"domain.{info.name}")
        topic = getattr(module, "TOPIC", None)
        if isinstance(topic, str):
            declared.add(topic)
    assert "incident-types" in declared  # contract section 5: a topic of its own
    assert declared <= TOPICS, f"add these modules to domain/topics.py: {declared - TOPICS}"
