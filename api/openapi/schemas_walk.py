"""Walking a JSON document: every object in it, for the passes that edit schemas in place."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def walk(*roots: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object inside ``roots`` (depth first, roots included)."""
    stack = list(roots)
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            yield node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
