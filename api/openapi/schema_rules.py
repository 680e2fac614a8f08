"""Rules the wire models' validators enforce that pydantic leaves out of their JSON Schemas.

Pydantic renders a field ``X | None = None`` as "X or null", but some models refuse an
explicit ``null`` (a configure key, a reservation's new status) and some refuse an empty
body; ``docking_success`` may be true only in phase ``success``. :func:`apply_rules` writes
these into every schema generated for those models, found by their ``title`` (the class
name; subclasses such as the socket frames and fleet events get theirs too).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from api.openapi.schemas_walk import walk

ALL_FIELDS = ("*",)


@dataclass(frozen=True, slots=True)
class SchemaRule:
    """What to add to the schema of models with one of ``titles``."""

    titles: tuple[str, ...]
    not_null: tuple[str, ...] = ()
    min_properties: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


_DOCKING_SUCCESS = {
    "if": {"properties": {"docking_success": {"const": True}}, "required": ["docking_success"]},
    "then": {"properties": {"phase": {"const": "success"}}},
}

RULES: tuple[SchemaRule, ...] = (
    SchemaRule(("ConfigUpdates",), not_null=ALL_FIELDS, min_properties=1),
    SchemaRule(("ReservationUpdate",), not_null=("scheduled_time", "status"), min_properties=1),
    SchemaRule(
        ("DockingUpdate", "DockingFrame", "DockingUpdateEvent", "DockingData"),
        extra=_DOCKING_SUCCESS,
    ),
)


def apply_rules(*roots: Any, rules: Iterable[SchemaRule] = RULES) -> None:
    """Apply :data:`RULES` to every model schema inside ``roots`` (in place)."""
    by_title = {title: rule for rule in rules for title in rule.titles}
    for node in walk(*roots):
        rule = by_title.get(str(node.get("title", "")))
        if rule is None or "properties" not in node:
            continue
        names = node["properties"] if rule.not_null == ALL_FIELDS else rule.not_null
        for name in names:
            node["properties"][name] = _without_null(node["properties"][name])
        if rule.min_properties is not None:
            node["minProperties"] = rule.min_properties
        node.update(rule.extra)


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` without its ``null`` alternative and null default (absent, never null)."""
    options = [option for option in schema.get("anyOf", []) if option != {"type": "null"}]
    result = {key: value for key, value in schema.items() if key != "anyOf"}
    if len(options) == 1:
        result = {**options[0], **result}
    elif options:
        result["anyOf"] = options
    if result.get("default", ...) is None:
        del result["default"]
    return result
