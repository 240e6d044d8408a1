"""Each REST resource is a declaration around one domain module's `RULES` (CONTRIBUTING.md)."""

from __future__ import annotations

import importlib

from api.crud import ResourceRoute
from api.routes import ROUTES
from domain.resource import ResourceRules


def test_every_resource_takes_its_rules_from_a_domain_module() -> None:
    resources = {r.resource.path: r.resource for r in ROUTES if isinstance(r, ResourceRoute)}
    assert len(resources) >= 12
    for path, resource in resources.items():
        rules = resource.rules
        assert isinstance(rules, ResourceRules), path
        home = importlib.import_module(rules.list_query.__module__)
        assert home.__name__.startswith("domain."), f"{path}: rules from {home.__name__}"
        assert getattr(home, "RULES", None) is rules, f"{path}: not {home.__name__}.RULES"
