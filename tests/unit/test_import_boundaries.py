"""ARCHITECTURE: storage/ is the only bridge to asyncio; layers import only downwards."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ASYNCIO_WORLD = {"asyncio", "asyncpg", "trio_asyncio"}
# What each package may not import (ARCHITECTURE "Layers and folders").
FORBIDDEN: dict[str, set[str]] = {
    "hub": ASYNCIO_WORLD,
    "actors": ASYNCIO_WORLD | {"quart", "quart_trio", "hypercorn"},
    "api": ASYNCIO_WORLD,
    "scripts": ASYNCIO_WORLD | {"storage", "actors"},
    "tests": ASYNCIO_WORLD,
    "storage": {"hub", "actors", "api", "quart", "quart_trio"},
}


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_what_its_layer_allows(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imported_modules(path) & FORBIDDEN[package])
        for path in sorted((ROOT / package).rglob("*.py"))
    }
    offenders = {path: names for path, names in offenders.items() if names}
    assert offenders == {}


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "sample.py"
    module.write_text("import asyncio\nfrom asyncpg import Pool\nfrom . import sibling\n")
    assert _imported_modules(module) == {"asyncio", "asyncpg"}
