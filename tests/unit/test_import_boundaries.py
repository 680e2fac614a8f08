"""ARCHITECTURE: storage/ is the only bridge to asyncio; layers import only downwards
(api → actors → storage → hub, as the import-linter contract in pyproject.toml says)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ASYNCIO_WORLD = {"asyncio", "asyncpg", "trio_asyncio", "coredis"}
WEB = {"quart", "quart_trio", "hypercorn"}
LAYERS = ["api", "actors", "storage", "hub"]
"""ARCHITECTURE "Layers and folders", top first: each imports only from the layers below it."""


def _above(layer: str) -> set[str]:
    return set(LAYERS[: LAYERS.index(layer)])


# What each package may not import: the layers above it, and the worlds kept out of it.
FORBIDDEN: dict[str, set[str]] = {
    "hub": ASYNCIO_WORLD | WEB | _above("hub"),
    "actors": ASYNCIO_WORLD | WEB | _above("actors"),
    "api": ASYNCIO_WORLD,
    "scripts": ASYNCIO_WORLD | {"storage", "actors", "api"},
    "tests": ASYNCIO_WORLD - {"coredis"},
    "storage": WEB | _above("storage"),
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
