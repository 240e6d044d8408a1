"""Imports point down only: bms → api → realtime, tasks → domain → db (DESIGN.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Lower number = higher layer; a module may import its own package or lower layers only.
LAYERS = {"bms": 0, "api": 1, "realtime": 2, "tasks": 2, "domain": 3, "db": 4}
# The app factory is a composition root (DESIGN.md): it reads the settings and wires logs.
COMPOSITION_ROOTS = {"api/app.py"}


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & LAYERS.keys()


def _violations(package: str) -> list[str]:
    layer = LAYERS[package]
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        if "migrations" in path.parts or str(path.relative_to(ROOT)) in COMPOSITION_ROOTS:
            continue
        for imported in _imported_packages(path):
            if imported != package and LAYERS[imported] <= layer:
                bad.append(f"{path.relative_to(ROOT)} imports {imported}")
    return bad


@pytest.mark.parametrize("package", ["api", "realtime", "tasks", "domain", "db"])
def test_imports_point_down(package: str) -> None:
    assert _violations(package) == []
